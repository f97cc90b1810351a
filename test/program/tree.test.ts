/**
 * Program tests with Pulumi mocks: the wiring of LayerTree, not the providers.
 * The end-to-end suite (test/e2e) runs the real engine and plugins.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/core/catalog.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { fingerprintTargets } from "../../src/core/fingerprint.js";
import { type LayerSource } from "../../src/core/layer-origin.js";
import { SECRET_SIGNATURE } from "../../src/pulumi/provider/layer-image-inputs.js";
import { planTargets } from "../../src/core/plan.js";
import { noteCatalog, scratchDir } from "../helpers/catalog.js";
import { BUILT_IMAGE_TYPES, CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE, DOCKER_IMAGE_TYPE, fakeDigest, installMocks, LAYER_IMAGE_TYPE, type RecordedResource, resolved } from "../helpers/mocks.js";

let recorded: RecordedResource[];
let treeModule: typeof import("../../src/pulumi/tree.js");
let dockerModule: import("../../src/pulumi/tree.js").LayerTreeArgs["dockerModule"];

beforeAll(async () => {
  recorded = await installMocks();
  // After setMocks: a static import would load @pulumi/docker before the mocks exist.
  treeModule = await import("../../src/pulumi/tree.js");
  dockerModule = await import("@pulumi/docker");
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

/** Inputs of docker.Image (builder "docker", the default). */
interface DockerImageInputs {
  imageName: string;
  skipPush: boolean;
  buildOnPreview: boolean;
  build: { context: string; dockerfile: string; platform: string; builderVersion: string; args: Record<string, string>; cacheFrom?: { images: string[] }; network?: string };
  registry?: { server: string; username: unknown; password: unknown };
}

/** Inputs of strata:index:LayerImage (builder "strata"). */
interface LayerImageInputs {
  imageName: string;
  push: boolean;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  network?: string;
}

interface Declared {
  readonly images: RecordedResource[];
  readonly digests: Record<string, string>;
  readonly fingerprints: Record<string, string>;
  readonly origins: Record<string, string>;
  readonly projectDir: string;
  readonly catalogDir: string;
}

interface DeclareOptions {
  readonly sources?: (fingerprints: Map<string, { fingerprint: string }>) => Map<string, LayerSource>;
  readonly registryAuth?: boolean;
  readonly catalogDir?: string;
  readonly engineOf?: ReadonlyMap<string, number>;
  readonly pullsParentFirst?: ReadonlyMap<string, boolean>;
}

async function declare(treeName: string, config: StackConfig, options: DeclareOptions = {}): Promise<Declared> {
  const { sources, registryAuth = false, catalogDir = noteCatalog(), engineOf, pullsParentFirst } = options;
  const catalog = loadCatalog(catalogDir);
  const targets = planTargets(catalog, config, "Pulumi.dev.yaml");
  const fingerprints = await fingerprintTargets(targets, config.platform);
  const projectDir = scratchDir("project");
  const pulumi = await import("@pulumi/pulumi");
  const tree = new treeModule.LayerTree(treeName, {
    targets, config, fingerprints, dockerModule, projectDir,
    ...(sources === undefined ? {} : { sources: sources(fingerprints) }),
    ...(engineOf === undefined ? {} : { engineOf }),
    ...(pullsParentFirst === undefined ? {} : { pullsParentFirst }),
    ...(registryAuth ? { registryAuth: pulumi.secret({ username: "ci-bot", password: "hunter2" }) } : {}),
  });
  const digests = Object.fromEntries(await Promise.all(tree.layers.map(async (layer) => [layer.layer, await resolved(layer.digestRef)] as const)));
  const images = recorded.filter((resource) => [...BUILT_IMAGE_TYPES, COPIED_IMAGE_TYPE].includes(resource.type) && tree.images.has(resource.name)).slice(-tree.images.size);
  return {
    images,
    digests,
    fingerprints: Object.fromEntries(tree.layers.map((layer) => [layer.layer, layer.fingerprint] as const)),
    origins: Object.fromEntries(tree.layers.map((layer) => [layer.layer, layer.origin] as const)),
    projectDir,
    catalogDir,
  };
}

function recordOf(images: RecordedResource[], name: string): RecordedResource {
  const found = images.find((image) => image.name === name);
  if (found === undefined) throw new Error(`no image ${name}`);
  return found;
}
const dockerInputsOf = (images: RecordedResource[], name: string): DockerImageInputs => recordOf(images, name).inputs as unknown as DockerImageInputs;
const layerInputsOf = (images: RecordedResource[], name: string): LayerImageInputs => recordOf(images, name).inputs as unknown as LayerImageInputs;

describe("LayerTree wiring (builder docker, the default: docker.Image)", () => {
  it("declares one docker.Image per layer, named and tagged by the policy", async () => {
    const { images, origins } = await declare("all", stackConfig());
    // Registration order follows the digests resolving, so compare as sets.
    expect(images.map((image) => image.name).sort()).toEqual(["debian", "keystone", "keystone-base", "mos", "ms", "mysql"]);
    expect(images.every((image) => image.type === DOCKER_IMAGE_TYPE)).toBe(true);
    expect(dockerInputsOf(images, "keystone").imageName).toBe("127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos-ms-keystone:1.0-p5");
    expect(dockerInputsOf(images, "mysql").imageName).toBe("127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos-mysql:1.0-p0");
    expect(Object.values(origins).every((origin) => origin === "built")).toBe(true);
    expect(recorded.some((resource) => resource.type === "strata:index:LayerTree" && resource.name === "all")).toBe(true);
  });

  it("builds each child FROM its parent's pushed digest, with BuildKit, an explicit platform and no build on preview", async () => {
    const { images, digests } = await declare("digests", stackConfig());
    for (const [child, parent] of [["mos", "debian"], ["ms", "mos"], ["keystone-base", "ms"], ["keystone", "keystone-base"], ["mysql", "mos"]] as const) {
      const args = dockerInputsOf(images, child).build.args;
      expect(args.BASE_IMAGE).toBe(digests[parent]);
      expect(args.BASE_IMAGE).toMatch(/^127\.0\.0\.1:5000\/debian8\.3-mos9\.0-dev\/.+@sha256:[0-9a-f]{64}$/);
      expect(args.STRATA_BASE_DIGEST).toBe(fakeDigest(parent));
      expect(args.STRATA_BASE_NAME).toBe(dockerInputsOf(images, parent).imageName);
      // Pulled through the engine before the build, for a runner that lacks it.
      expect(dockerInputsOf(images, child).build.cacheFrom).toEqual({ images: [digests[parent]] });
    }
    const keystone = dockerInputsOf(images, "keystone");
    expect(keystone.build.builderVersion).toBe("BuilderBuildKit");
    expect(keystone.build.platform).toBe("linux/amd64");
    expect(keystone.skipPush).toBe(false);
    expect(keystone.buildOnPreview).toBe(false);
    expect(dockerInputsOf(images, "debian").build.args.BASE_IMAGE).toBeUndefined();
  });

  it("passes the tag, the static source and the fingerprint labels' values; nothing volatile", async () => {
    const first = await declare("inputs-a", stackConfig());
    const second = await declare("inputs-b", stackConfig(), { catalogDir: first.catalogDir });
    const keystone = dockerInputsOf(first.images, "keystone");
    expect(keystone.build.args.STRATA_VERSION).toBe("1.0-p5");
    expect(keystone.build.args.STRATA_SOURCE).toBe("https://example.invalid/layers");
    expect(keystone.build.args.STRATA_FINGERPRINT).toBe(first.fingerprints.keystone);
    expect(keystone.build.args.STRATA_INPUTS).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Object.keys(keystone.build.args).sort()).toEqual(["BASE_IMAGE", "STRATA_BASE_DIGEST", "STRATA_BASE_NAME", "STRATA_FINGERPRINT", "STRATA_INPUTS", "STRATA_SOURCE", "STRATA_VERSION"]);
    // Two declarations from two project folders: the same inputs, paths included.
    expect(dockerInputsOf(second.images, "keystone")).toEqual(keystone);
  });

  it("builds from a Dockerfile outside the context that adds the org.strata.* labels; paths are relative to the project", async () => {
    const { images, projectDir, catalogDir } = await declare("labels", stackConfig());
    const { build } = dockerInputsOf(images, "keystone");
    expect(path.isAbsolute(build.context)).toBe(false);
    expect(path.resolve(projectDir, build.context)).toBe(path.join(catalogDir, "keystone"));
    expect(build.dockerfile).toMatch(/^\.strata\/dockerfiles\/keystone-[0-9a-f]{16}\.Dockerfile$/);
    const written = readFileSync(path.join(projectDir, build.dockerfile), "utf8");
    const original = readFileSync(path.join(catalogDir, "keystone/Dockerfile"), "utf8");
    expect(written.startsWith(original)).toBe(true);
    expect(written).toContain('LABEL org.strata.fingerprint="${STRATA_FINGERPRINT}" org.strata.inputs="${STRATA_INPUTS}"');
  });

  it("gives the registry login as the resource's registry input, the password a secret", async () => {
    const { images } = await declare("login", stackConfig(), { registryAuth: true });
    // As the engine receives it: a secret (Pulumi's secret signature), so the state keeps it encrypted.
    const registry = recordOf(images, "mos").inputs.registry as Record<string, unknown>;
    expect(registry[SECRET_SIGNATURE[0]]).toBe(SECRET_SIGNATURE[1]);
    expect(registry.value).toEqual({ server: "127.0.0.1:5000", username: "ci-bot", password: "hunter2" });
  });

  it("adopts what the registry holds: a CopiedImage of the tag at the registry's digest, children built on it", async () => {
    const published = "127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos@sha256:" + "a".repeat(64);
    const { images, digests, origins } = await declare("adopt", stackConfig(), { sources: (fingerprints) => new Map<string, LayerSource>([
      ["debian", { origin: "adopted", published: { digestRef: "127.0.0.1:5000/debian8.3-mos9.0-dev/debian@sha256:" + "b".repeat(64), fingerprint: fingerprints.get("debian")?.fingerprint as string } }],
      ["mos", { origin: "adopted", published: { digestRef: published, fingerprint: fingerprints.get("mos")?.fingerprint as string } }],
    ]) });
    const mos = recordOf(images, "mos");
    expect(mos.type).toBe(COPIED_IMAGE_TYPE);
    expect(mos.inputs).toMatchObject({ registry: "127.0.0.1:5000", sourceRepository: "debian8.3-mos9.0-dev/debian-mos", targetRepository: "debian8.3-mos9.0-dev/debian-mos", tag: "1.0-p0", digest: `sha256:${"a".repeat(64)}`, immutable: true });
    expect(digests.mos).toBe(published);
    expect(recordOf(images, "ms").type).toBe(DOCKER_IMAGE_TYPE);
    expect(dockerInputsOf(images, "ms").build.args.BASE_IMAGE).toBe(published);
    expect(origins).toMatchObject({ debian: "adopted", mos: "adopted", ms: "built", mysql: "built" });
  });

  it("a CI run copies the channel's images to their CI tags in one set, annotated so each copy has its own digest; builds stand on the copies' sources", async () => {
    const channelDigest = (layer: string): string => fakeDigest(`channel-${layer}`);
    const repositories: Record<string, string> = { debian: "debian", mos: "debian-mos", mysql: "debian-mos-mysql" };
    const before = recorded.length;
    const { digests, origins } = await declare("ci-copy", stackConfig({ change: 19026, patchset: 2 }), { sources: (fingerprints) => new Map<string, LayerSource>(["debian", "mos", "mysql"].map((layer) => [layer, {
      origin: "copied", from: { tag: "1.0-p0", published: { digestRef: `127.0.0.1:5000/debian8.3-mos9.0-dev/${repositories[layer] as string}@${channelDigest(layer)}`, fingerprint: fingerprints.get(layer)?.fingerprint as string } },
    }] as const)) });
    const sets = recorded.slice(before).filter((resource) => resource.type === CI_COPY_SET_TYPE);
    expect(sets.map((set) => set.name)).toEqual(["ci-copies"]);
    expect(sets[0]?.inputs).toMatchObject({
      registry: "127.0.0.1:5000",
      copies: ["debian", "mos", "mysql"].map((layer) => ({ layer, repository: `debian8.3-mos9.0-dev/${repositories[layer] as string}`, digest: channelDigest(layer), tag: "1.0-p0-19026_2", annotations: { "org.strata.tag": "1.0-p0-19026_2" } })),
    });
    const built = recorded.slice(before).filter((resource) => resource.type === DOCKER_IMAGE_TYPE);
    expect(built.map((resource) => resource.name).sort()).toEqual(["keystone", "keystone-base", "ms"]);
    // ms builds FROM the channel's image of mos (the copy's source, the same image), so it waits for no copy.
    const msArgs = dockerInputsOf(built, "ms").build.args;
    expect(msArgs.BASE_IMAGE).toBe(`127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos@${channelDigest("mos")}`);
    expect(msArgs.STRATA_BASE_DIGEST).toBe(channelDigest("mos"));
    expect(msArgs.STRATA_BASE_NAME).toBe("127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos:1.0-p0");
    expect(dockerInputsOf(built, "ms").build.cacheFrom?.images).toEqual([msArgs.BASE_IMAGE]);
    // The layer's own record is its copy.
    expect(digests.mos).toBe(`127.0.0.1:5000/debian8.3-mos9.0-dev/debian-mos@${fakeDigest("copy-mos")}`);
    expect(origins).toMatchObject({ debian: "copied", mos: "copied", mysql: "copied", ms: "built" });
  });

  it("a pool of engines: one docker.Provider per engine with its host, each image on the engine placement gives it", async () => {
    const engines = ["unix:///run/strata-e0.sock", "unix:///run/strata-e1.sock"];
    const config = stackConfig({ engines });
    const engineOf = new Map([["debian", 0], ["mos", 0], ["ms", 1], ["keystone-base", 1], ["keystone", 1], ["mysql", 0]]);
    const before = recorded.length;
    await declare("pool", config, { engineOf });
    const providers = recorded.slice(before).filter((resource) => resource.type === "pulumi:providers:docker");
    expect(providers.map((provider) => [provider.name, provider.inputs.host])).toEqual([["engine-0", engines[0]], ["engine-1", engines[1]]]);
    const images = recorded.slice(before).filter((resource) => resource.type === DOCKER_IMAGE_TYPE);
    for (const image of images) expect(image.provider, image.name).toMatch(new RegExp(`pulumi:providers:docker::engine-${engineOf.get(image.name)}::`));
  });

  it("declares only the selected layers and their ancestors", async () => {
    const { images } = await declare("selected", stackConfig({ layers: ["mysql"] }));
    expect(images.map((image) => image.name).sort()).toEqual(["debian", "mos", "mysql"]);
  });

  it("builds children from the local parent tag with skipPush when push is off", async () => {
    const { images } = await declare("local", stackConfig({ push: false }));
    const mos = dockerInputsOf(images, "mos");
    expect(mos.skipPush).toBe(true);
    expect(mos.build.args.BASE_IMAGE).toBe(dockerInputsOf(images, "debian").imageName);
    expect(mos.build.args.STRATA_BASE_DIGEST).toBe(fakeDigest("debian"));
    expect(mos.build.cacheFrom).toBeUndefined();
  });

  it("puts CI tags on every image, with the channel's fingerprints (the suffix names the build, not its content)", async () => {
    const release = await declare("release", stackConfig());
    const ci = await declare("ci", stackConfig({ change: 19026, patchset: 2 }));
    expect(dockerInputsOf(ci.images, "keystone").imageName).toMatch(/debian-mos-ms-keystone:1\.0-p5-19026_2$/);
    expect(dockerInputsOf(ci.images, "keystone").build.args.STRATA_VERSION).toBe("1.0-p5");
    for (const layer of Object.keys(release.fingerprints)) expect(ci.fingerprints[layer]).toBe(release.fingerprints[layer]);
    // ms and mysql have the same Dockerfile, tag and parent here: identical inputs, identical fingerprints.
    expect(release.fingerprints.ms).toBe(release.fingerprints.mysql);
  });

  it("names the parent in cacheFrom only for the layers whose build pulls it first (core/parent-pull.ts), the others' absent from the map included", async () => {
    const none = new Map(["debian", "mos", "ms", "keystone-base", "keystone", "mysql"].map((layer) => [layer, false] as const));
    const { images, digests } = await declare("pull-none", stackConfig(), { pullsParentFirst: none });
    expect(images.map((image) => dockerInputsOf(images, image.name).build.cacheFrom)).toEqual(images.map(() => undefined));
    // The parent still comes in as BASE_IMAGE: BuildKit pulls it itself where the engine lacks it.
    expect(dockerInputsOf(images, "keystone").build.args.BASE_IMAGE).toBe(digests["keystone-base"]);
    const some = await declare("pull-some", stackConfig(), {
      pullsParentFirst: new Map([["debian", true], ["mos", true], ["ms", true], ["keystone-base", false], ["keystone", false]]),
    });
    expect(dockerInputsOf(some.images, "mysql").build.cacheFrom).toEqual({ images: [some.digests.mos] });
    expect(dockerInputsOf(some.images, "ms").build.cacheFrom).toEqual({ images: [some.digests.mos] });
    expect(dockerInputsOf(some.images, "keystone-base").build.cacheFrom).toBeUndefined();
    expect(dockerInputsOf(some.images, "keystone").build.cacheFrom).toBeUndefined();
  });
});

describe("LayerTree wiring (builder strata: Strata's LayerImage)", () => {
  it("gives every build the stack's network, and none at all on the engine's default (the inputs a stack always declared)", async () => {
    const { images } = await declare("network-default", stackConfig());
    expect(images.every((image) => !("network" in dockerInputsOf(images, image.name).build))).toBe(true);
    const host = await declare("network-host", stackConfig({ buildNetwork: "host" }));
    expect(host.images.map((image) => dockerInputsOf(host.images, image.name).build.network)).toEqual(host.images.map(() => "host"));
    const strata = await declare("network-strata", stackConfig({ builder: "strata", buildNetwork: "none" }));
    expect(strata.images.map((image) => layerInputsOf(strata.images, image.name).network)).toEqual(strata.images.map(() => "none"));
  });

  it("declares LayerImage resources chained by repoDigest, labelled with the fingerprint", async () => {
    const { images, digests, fingerprints } = await declare("strata", stackConfig({ builder: "strata" }));
    expect(images.every((image) => image.type === LAYER_IMAGE_TYPE)).toBe(true);
    const keystone = layerInputsOf(images, "keystone");
    expect(keystone.buildArgs.BASE_IMAGE).toBe(digests["keystone-base"]);
    expect(keystone.labels["org.strata.fingerprint"]).toBe(fingerprints.keystone);
    expect(keystone.push).toBe(true);
  });
});
