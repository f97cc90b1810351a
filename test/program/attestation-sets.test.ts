/**
 * Program test with Pulumi mocks: the wiring of the attestation sets (pulumi/image-attestations.ts):
 * every published image in exactly one ImageAttestationsSet, sibling families (a layer with children
 * and the leaves under it) together, cut where a head's name ends a set (core/attestation-sets.ts),
 * and each layer's stack outputs read from its own set's entry.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { endsSet } from "../../src/core/attestation-sets.js";
import { IMAGE_ATTESTATIONS_SET_TYPE } from "../../src/core/image-types.js";
import { fakeDigest, installMocks, type RecordedResource, resolved } from "../helpers/mocks.js";

let recorded: RecordedResource[];
let attestations: typeof import("../../src/pulumi/image-attestations.js");
let pulumi: typeof import("@pulumi/pulumi");

beforeAll(async () => {
  recorded = await installMocks();
  attestations = await import("../../src/pulumi/image-attestations.js");
  pulumi = await import("@pulumi/pulumi");
});

const REGISTRY = "127.0.0.1:5000";
const digestRefOf = (layer: string): string => `${REGISTRY}/g/${layer}@${fakeDigest(layer)}`;

describe("attestation sets in the program", () => {
  it("puts each layer's image in its set, and reads each layer's outputs from its own set", async () => {
    // base → svcN-base → svcN, six services: base alone; svc4-base's name ends a set (endsSet), so
    // the families of svc0 to svc4 share one, and svc5's starts the next.
    expect([0, 1, 2, 3, 4, 5].map((at) => endsSet(`svc${at}-base`))).toEqual([false, false, false, false, true, false]);
    const edges: [string, string | null][] = [["base", null], ...[0, 1, 2, 3, 4, 5].flatMap((at): [string, string][] => [[`svc${at}-base`, "base"], [`svc${at}`, `svc${at}-base`]])];
    const names = edges.map(([layer]) => layer);
    const layers = edges.map(([layer, parentLayer]) => ({
      layer, kind: "service", image: layer, tag: "1.0-p0", ref: `${REGISTRY}/g/${layer}:1.0-p0`, digestRef: pulumi.output(digestRefOf(layer)),
      parent: parentLayer, origin: "built" as const, fingerprint: `f-${layer}`, inputsDigest: `i-${layer}`, contextDigest: `c-${layer}`,
    }));
    const parent = new pulumi.ComponentResource("test:index:Parent", "attestation-sets");
    const facts = { stack: "dev", channel: "dev", strataVersion: "0.1.0", engine: { name: "docker.Image (@pulumi/docker)", version: "29" }, source: { repository: "file:///src", commit: "c".repeat(40), clean: true } };
    const signingKey = pulumi.secret({ privateKeyPem: "pem", password: "pw" });
    // svc3 was adopted (in the registry under its tag with its fingerprint, built by another run).
    const attested = attestations.declareAttestations(layers, { registry: REGISTRY, targets: [], indexes: [], platform: "linux/amd64", facts, signingKey, adopted: new Set(["svc3"]) }, parent);

    // Each layer's outputs are its own image's, whichever set signed it.
    for (const layer of names) {
      expect(await resolved((attested.get(layer) as { signature: import("@pulumi/pulumi").Output<string> }).signature), layer).toBe(`${digestRefOf(layer)}.sig`);
      expect(await resolved((attested.get(layer) as { packages: import("@pulumi/pulumi").Output<number> }).packages)).toBe(layer.length);
    }
    // The mocks record a resource when its inputs resolve: in any order.
    const sets = recorded.filter((resource) => resource.type === IMAGE_ATTESTATIONS_SET_TYPE).sort((a, b) => a.name.localeCompare(b.name));
    expect(sets.map((set) => [set.name, Object.keys(set.inputs.images as Record<string, unknown>).sort()])).toEqual([
      ["attestations-base", ["base"]],
      ["attestations-svc0-base", ["svc0", "svc0-base", "svc1", "svc1-base", "svc2", "svc2-base", "svc3", "svc3-base", "svc4", "svc4-base"]],
      ["attestations-svc5-base", ["svc5", "svc5-base"]],
    ]);
    // An image's parent is the one its build ran on, and the run id is no input (it differs on every run).
    const images = sets[1]?.inputs.images as Record<string, { digestRef: string; provenanceFacts: { parent: string; runId?: string; adopted?: boolean } }>;
    expect(images.svc2?.digestRef).toBe(digestRefOf("svc2"));
    expect(images.svc2?.provenanceFacts.parent).toBe(digestRefOf("svc2-base"));
    expect(images.svc2?.provenanceFacts.runId).toBeUndefined();
    // Only the adopted image says so; a built one's inputs carry no such field.
    expect(images.svc3?.provenanceFacts.adopted).toBe(true);
    expect("adopted" in (images.svc2?.provenanceFacts ?? {})).toBe(false);
    expect("adoptedAncestor" in (images.svc3?.provenanceFacts ?? {})).toBe(false);
  });

  it("names in each image built on an adopted image, directly or through its parents, the nearest such ancestor; a copied parent's bytes are its source's", async () => {
    // A copy's and an adopted image's own provenance says already that this run did not build them.
    const before = recorded.length;
    // base (adopted) → mid (built) → app (built); base → cp (copied, CI) → leaf (built); top (adopted) → over (adopted) → under (built).
    const edges: [string, string | null][] = [["a-base", null], ["a-mid", "a-base"], ["a-app", "a-mid"], ["a-cp", "a-base"], ["a-leaf", "a-cp"], ["a-top", null], ["a-over", "a-top"], ["a-under", "a-over"]];
    const layers = edges.map(([layer, parentLayer]) => ({
      layer, kind: "service", image: layer, tag: "1.0-p0", ref: `${REGISTRY}/g/${layer}:1.0-p0`, digestRef: pulumi.output(digestRefOf(layer)),
      parent: parentLayer, origin: "built" as const, fingerprint: `f-${layer}`, inputsDigest: `i-${layer}`, contextDigest: `c-${layer}`,
    }));
    const facts = { stack: "dev", channel: "dev", strataVersion: "0.1.0", engine: { name: "docker.Image (@pulumi/docker)", version: "29" }, source: { repository: "file:///src", commit: "c".repeat(40), clean: true } };
    const copiedFrom = new Map([["a-cp", `${REGISTRY}/g/a-cp@${fakeDigest("release-a-cp")}`]]);
    attestations.declareAttestations(layers, { registry: REGISTRY, targets: [], indexes: [], platform: "linux/amd64", facts, signingKey: pulumi.secret({ privateKeyPem: "pem", password: "pw" }), copiedFrom, adopted: new Set(["a-base", "a-top", "a-over"]) }, new pulumi.ComponentResource("test:index:Parent", "adopted-ancestors"));
    const images = (): Record<string, { provenanceFacts: { adoptedAncestor?: string; adopted?: boolean } }> => Object.assign({}, ...recorded.slice(before).filter((resource) => resource.type === IMAGE_ATTESTATIONS_SET_TYPE).map((set) => set.inputs.images)) as Record<string, { provenanceFacts: { adoptedAncestor?: string; adopted?: boolean } }>;
    await vi.waitFor(() => expect(Object.keys(images()).sort()).toEqual(edges.map(([layer]) => layer).sort()));
    const ancestors = Object.fromEntries(Object.entries(images()).map(([name, image]) => [name, image.provenanceFacts.adoptedAncestor ?? null]));
    expect(ancestors).toEqual({
      "a-base": null, "a-mid": digestRefOf("a-base"), "a-app": digestRefOf("a-base"),
      "a-cp": null, "a-leaf": null,
      "a-top": null, "a-over": null, "a-under": digestRefOf("a-over"),
    });
  });

  it("puts a multi-platform layer's index, its platforms' images in the index's repository, and each per-platform image in sets, none twice", async () => {
    const before = recorded.length;
    const platforms = ["linux/amd64", "linux/arm64"];
    const layerOf = (layer: string, parentLayer: string | null, digestRef: string) => ({
      layer, kind: "service", image: layer, tag: "1.0-p0", ref: `${REGISTRY}/g/${layer}:1.0-p0`, digestRef: pulumi.output(digestRef),
      parent: parentLayer, origin: "built" as const, fingerprint: `f-${layer}`, inputsDigest: `i-${layer}`, contextDigest: `c-${layer}`,
    });
    const { platformLayerName } = await import("../../src/core/platforms.js");
    const perPlatform = ["mp-base", "mp-app"].flatMap((layer) => platforms.map((platform) => layerOf(platformLayerName(layer, platform), layer === "mp-app" ? platformLayerName("mp-base", platform) : null, digestRefOf(platformLayerName(layer, platform)))));
    const indexed = ["mp-base", "mp-app"].map((layer) => ({
      ...layerOf(layer, layer === "mp-app" ? "mp-base" : null, digestRefOf(layer)),
      platforms: pulumi.output(Object.fromEntries(platforms.map((platform) => [platform, digestRefOf(`${layer}-in-index-${platform}`)]))),
    }));
    const indexes = ["mp-base", "mp-app"].map((layer) => ({
      layer,
      target: { ownBuildArgs: {} } as unknown as import("../../src/core/plan.js").LayerTarget,
      entries: platforms.map((platform) => ({ platform, name: platformLayerName(layer, platform), repositoryPath: `g/${layer}/${platform.replace("/", "-")}` })),
    }));
    const parent = new pulumi.ComponentResource("test:index:Parent", "attestation-sets-mp");
    const facts = { stack: "dev", channel: "dev", strataVersion: "0.1.0", engine: { name: "docker.Image (@pulumi/docker)", version: "29" }, source: { repository: "file:///src", commit: "c".repeat(40), clean: true } };
    const attested = attestations.declareAttestations([...perPlatform, ...indexed], { registry: REGISTRY, targets: [], indexes, platform: "linux/amd64", facts, signingKey: pulumi.secret({ privateKeyPem: "pem", password: "pw" }) }, parent);
    expect(await resolved((attested.get("mp-app") as { signature: import("@pulumi/pulumi").Output<string> }).signature)).toBe(`${digestRefOf("mp-app")}.sig`);
    await resolved((attested.get(platformLayerName("mp-app", "linux/arm64")) as { signature: import("@pulumi/pulumi").Output<string> }).signature);
    const sets = recorded.slice(before).filter((resource) => resource.type === IMAGE_ATTESTATIONS_SET_TYPE);
    const images = sets.flatMap((set) => Object.entries(set.inputs.images as Record<string, { digestRef: string }>));
    const names = images.map(([name]) => name);
    expect(new Set(names).size).toBe(names.length);
    // Each index, each of its platforms' images again in the index's repository, and each per-platform image.
    expect([...names].sort()).toEqual([
      "mp-app", "mp-app/linux-amd64", "mp-app/linux-arm64", "mp-base", "mp-base/linux-amd64", "mp-base/linux-arm64",
      ...perPlatform.map((layer) => layer.layer),
    ].sort());
    expect(Object.fromEntries(images)["mp-app/linux-arm64"]?.digestRef).toBe(digestRefOf("mp-app-in-index-linux/arm64"));
    // The index's platform images are in its own set, beside the index.
    const appSet = sets.find((set) => Object.keys(set.inputs.images as Record<string, unknown>).includes("mp-app"));
    expect(Object.keys(appSet?.inputs.images as Record<string, unknown>)).toEqual(expect.arrayContaining(["mp-app/linux-amd64", "mp-app/linux-arm64"]));
  });
});
