/**
 * Program tests with Pulumi mocks: the wiring of LayerTree, not the provider.
 * The end-to-end suite (test/e2e) runs the real engine.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog.js";
import { resolveStackConfig, type StackConfig } from "../../src/config.js";
import { fingerprintTargets } from "../../src/fingerprint.js";
import { planTargets } from "../../src/plan.js";
import { noteCatalog } from "../helpers/catalog.js";
import { DOCKER_IMAGE_TYPE, fakeDigest, IMAGE_TYPES, installMocks, LAYER_IMAGE_TYPE, type RecordedResource, resolved } from "../helpers/mocks.js";

let recorded: RecordedResource[];
let treeModule: typeof import("../../src/tree.js");

beforeAll(async () => {
  recorded = await installMocks();
  // After setMocks: a static import would load @pulumi/docker before the mocks exist.
  treeModule = await import("../../src/tree.js");
});

function stackConfig(values: Record<string, unknown> = {}): StackConfig {
  const { config, problems } = resolveStackConfig({
    values: { registry: "127.0.0.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "dev", source: "https://example.invalid/layers", ...values },
    file: "Pulumi.dev.yaml",
    env: {},
  });
  if (config === undefined) throw new Error(JSON.stringify(problems));
  return config;
}

/** Inputs of strata:index:LayerImage (the default builder). */
interface ImageInputs {
  imageName: string;
  push: boolean;
  context: string;
  dockerfile: string;
  platform: string;
  contextDigest: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
}

/** Inputs of docker.Image (builder: pulumi-docker). */
interface DockerImageInputs {
  imageName: string;
  skipPush: boolean;
  build: { context: string; dockerfile: string; platform: string; builderVersion: string; args: Record<string, string> };
}

async function declare(treeName: string, config: StackConfig) {
  const catalog = loadCatalog(noteCatalog());
  const targets = planTargets(catalog, config, "Pulumi.dev.yaml");
  const fingerprints = await fingerprintTargets(targets, config.platform);
  const dockerModule = config.builder === "pulumi-docker" ? await import("@pulumi/docker") : undefined;
  const tree = new treeModule.LayerTree(treeName, { targets, config, fingerprints, ...(dockerModule === undefined ? {} : { dockerModule }) });
  const digests = Object.fromEntries(
    await Promise.all(tree.layers.map(async (layer) => [layer.layer, await resolved(layer.digestRef)] as const)),
  );
  const layerFingerprints = Object.fromEntries(
    tree.layers.map((layer) => [layer.layer, layer.fingerprint] as const),
  );
  const images = recorded.filter((resource) => IMAGE_TYPES.includes(resource.type) && tree.images.has(resource.name));
  return { tree, digests, fingerprints: layerFingerprints, images: images.slice(-tree.images.size) };
}

function recordOf(images: RecordedResource[], name: string): RecordedResource {
  const found = images.find((image) => image.name === name);
  if (found === undefined) throw new Error(`no image ${name}`);
  return found;
}
const inputsOf = (images: RecordedResource[], name: string): ImageInputs => recordOf(images, name).inputs as unknown as ImageInputs;
const dockerInputsOf = (images: RecordedResource[], name: string): DockerImageInputs => recordOf(images, name).inputs as unknown as DockerImageInputs;

describe("LayerTree wiring (strata builder, the default)", () => {
  it("declares one image per layer, named and tagged by the policy", async () => {
    const { images } = await declare("all", stackConfig());
    // Registration order follows the digests resolving, so compare as sets.
    expect(images.map((image) => image.name).sort()).toEqual(["debian", "keystone", "keystone-base", "mos", "ms", "mysql"]);
    expect(images.every((image) => image.type === LAYER_IMAGE_TYPE)).toBe(true);
    expect(inputsOf(images, "keystone").imageName).toBe("127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos-ms-keystone:1.0-p5");
    expect(inputsOf(images, "mysql").imageName).toBe("127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos-mysql:1.0-p0");
    expect(recorded.some((resource) => resource.type === "strata:index:LayerTree" && resource.name === "all")).toBe(true);
  });

  it("builds each child FROM its parent's pushed digest", async () => {
    const { images, digests } = await declare("digests", stackConfig());
    for (const [child, parent] of [["mos", "debian"], ["ms", "mos"], ["keystone-base", "ms"], ["keystone", "keystone-base"], ["mysql", "mos"]] as const) {
      const args = inputsOf(images, child).buildArgs;
      expect(args.BASE_IMAGE).toBe(digests[parent]);
      expect(args.BASE_IMAGE).toMatch(/^127\.0\.0\.1:5000\/debian8\.3-mos9\.0-dev\/.+@sha256:[0-9a-f]{64}$/);
      expect(args.STRATA_BASE_DIGEST).toBe(fakeDigest(parent));
      expect(args.STRATA_BASE_NAME).toBe(inputsOf(images, parent).imageName);
    }
    expect(inputsOf(images, "debian").buildArgs.BASE_IMAGE).toBeUndefined();
  });

  it("passes the tag, the static source, the platform and the context digest; nothing volatile", async () => {
    const { images } = await declare("inputs", stackConfig());
    const keystone = inputsOf(images, "keystone");
    expect(keystone.buildArgs.STRATA_VERSION).toBe("1.0-p5");
    expect(keystone.buildArgs.STRATA_SOURCE).toBe("https://example.invalid/layers");
    expect(keystone.platform).toBe("linux/amd64");
    expect(keystone.dockerfile).toMatch(/keystone\/Dockerfile$/);
    expect(keystone.contextDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(keystone.push).toBe(true);
    expect(Object.keys(keystone.buildArgs).sort()).toEqual(["BASE_IMAGE", "STRATA_BASE_DIGEST", "STRATA_BASE_NAME", "STRATA_SOURCE", "STRATA_VERSION"]);
  });

  it("labels each image with a fingerprint that chains to its parent's", async () => {
    const first = await declare("fingerprint-a", stackConfig());
    const second = await declare("fingerprint-b", stackConfig());
    expect(first.fingerprints).toEqual(second.fingerprints);
    expect(inputsOf(first.images, "keystone").labels["org.strata.fingerprint"]).toBe(first.fingerprints.keystone);
    // ms and mysql have the same Dockerfile, tag and parent here: identical inputs, identical fingerprints.
    expect(first.fingerprints.ms).toBe(first.fingerprints.mysql);
    expect(new Set(Object.values(first.fingerprints)).size).toBe(5);
    const ci = await declare("fingerprint-ci", stackConfig({ change: 5 }));
    // The tag is an input of every layer, so every fingerprint moves.
    for (const layer of Object.keys(first.fingerprints)) expect(ci.fingerprints[layer]).not.toBe(first.fingerprints[layer]);
  });

  it("declares only the selected layers and their ancestors", async () => {
    const { images } = await declare("selected", stackConfig({ layers: ["mysql"] }));
    expect(images.map((image) => image.name).sort()).toEqual(["debian", "mos", "mysql"]);
  });

  it("builds children from the local parent when push is off", async () => {
    const { images } = await declare("local", stackConfig({ push: false }));
    const mos = inputsOf(images, "mos");
    expect(mos.push).toBe(false);
    expect(mos.buildArgs.BASE_IMAGE).toBe(inputsOf(images, "debian").imageName);
    expect(mos.buildArgs.STRATA_BASE_DIGEST).toBe(fakeDigest("debian"));
  });

  it("puts CI tags on every image", async () => {
    const { images } = await declare("ci", stackConfig({ change: 19026, patchset: 2 }));
    expect(inputsOf(images, "keystone").imageName).toMatch(/debian-mos-ms-keystone:1\.0-p5-19026_2$/);
  });
});

describe("LayerTree wiring (pulumi-docker builder: docker.Image)", () => {
  it("declares docker.Image resources chained by repoDigest, with an explicit platform and the legacy builder", async () => {
    const { images, digests } = await declare("docker", stackConfig({ builder: "pulumi-docker" }));
    expect(images.every((image) => image.type === DOCKER_IMAGE_TYPE)).toBe(true);
    const keystone = dockerInputsOf(images, "keystone");
    expect(keystone.imageName).toBe("127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos-ms-keystone:1.0-p5");
    expect(keystone.build.args.BASE_IMAGE).toBe(digests["keystone-base"]);
    expect(keystone.build.platform).toBe("linux/amd64");
    expect(keystone.build.builderVersion).toBe("BuilderV1");
    expect(keystone.skipPush).toBe(false);
  });
  it("builds from the local parent tag with skipPush when push is off", async () => {
    const { images } = await declare("docker-local", stackConfig({ builder: "pulumi-docker", push: false }));
    expect(dockerInputsOf(images, "mos").skipPush).toBe(true);
    expect(dockerInputsOf(images, "mos").build.args.BASE_IMAGE).toBe(dockerInputsOf(images, "debian").imageName);
  });
});
