import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { resolveStackConfig } from "../../src/core/config.js";
import { gateTargets, planPromotion, promotionRefusals, refusalMessage, type PromotionTarget, type SourceLayer } from "../../src/core/promotion-plan.js";
import { type ImageVerdict } from "../../src/core/trust-verdict.js";
import { diffRegistryCopy, parseRegistryCopyInputs } from "../../src/pulumi/provider/registry-copy-inputs.js";
import { RegistryClient } from "../../src/registry/client.js";
import { copyCosignTags, copyImage, deleteCopy, deleteOrphan, isIndexManifest } from "../../src/registry/copy.js";
import { groupTags } from "../../src/registry/lookups.js";
import { MemoryRegistry } from "../helpers/memory-registry.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const digestOf = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const hex = (digest: string): string => digest.slice("sha256:".length);

const blob = (name: string): { digest: string } => ({ digest: digestOf(Buffer.from(name)) });
const image = (name: string): unknown => ({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob(`${name}-config`), layers: [blob(`${name}-layer`)] });
const cosignManifest = (name: string): unknown => ({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: blob(`${name}-cosign-config`), layers: [{ ...blob(`${name}-signature`), annotations: { "dev.cosignproject.cosign/signature": "MEUC" } }] });

/** The registry's client with some of its methods replaced: a fault, or another run's write at a chosen moment. */
const clientWith = (registry: MemoryRegistry, replaced: Partial<Pick<MemoryRegistry, "manifest" | "deleteManifest" | "repositories">>): RegistryClient => Object.assign(Object.create(registry) as MemoryRegistry, replaced) as unknown as RegistryClient;

/** dev/app: an image with .sig and .att; dev/multi: an index of two platform images, each signed, the index signed. */
function world(): { registry: MemoryRegistry; app: string; index: string; platforms: string[] } {
  const registry = new MemoryRegistry("127.0.0.1:5000");
  const app = registry.add("dev/app", "1.0", image("app"));
  registry.add("dev/app", `sha256-${hex(app)}.sig`, cosignManifest("app-sig"));
  registry.add("dev/app", `sha256-${hex(app)}.att`, cosignManifest("app-att"));
  const platforms = ["amd64", "arm64"].map((arch) => registry.add("dev/multi", undefined, image(`multi-${arch}`)));
  const index = registry.add("dev/multi", "1.0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: platforms.map((digest, at) => ({ mediaType: OCI_MANIFEST, digest, platform: { os: "linux", architecture: at === 0 ? "amd64" : "arm64" } })) }, OCI_INDEX);
  for (const about of [index, ...platforms]) registry.add("dev/multi", `sha256-${hex(about)}.sig`, cosignManifest(`multi-${hex(about)}`));
  return { registry, app, index, platforms };
}

describe("promotion copies cosign's signature tags with the image", () => {
  it("copies an image's .sig and .att under the same tags, bytes unchanged, blobs mounted; a tag the source lacks is skipped", async () => {
    const { registry, app } = world();
    expect(await copyCosignTags(registry.client, "dev/app", "stable/app", app)).toEqual({ copied: [`sha256-${hex(app)}.sig`, `sha256-${hex(app)}.att`] });
    for (const suffix of ["sig", "att"]) {
      const tag = `sha256-${hex(app)}.${suffix}`;
      expect(registry.tagged.get(`stable/app:${tag}`)).toBe(registry.tagged.get(`dev/app:${tag}`));
    }
    expect(registry.blobs.has(`stable/app@${blob("app-sig-signature").digest}`)).toBe(true);
  });

  it("copies the index's and each platform image's signatures", async () => {
    const { registry, index, platforms } = world();
    const { copied } = await copyCosignTags(registry.client, "dev/multi", "stable/multi", index);
    expect(copied).toEqual([index, ...platforms].map((digest) => `sha256-${hex(digest)}.sig`));
  });

  it("a rerun copies nothing; a target tag with other bytes is refused, not overwritten", async () => {
    const { registry, app } = world();
    await copyCosignTags(registry.client, "dev/app", "stable/app", app);
    const writes = registry.writes.length;
    expect(await copyCosignTags(registry.client, "dev/app", "stable/app", app)).toEqual({ copied: [] });
    expect(registry.writes.length).toBe(writes);
    const foreign = registry.add("qa/app", `sha256-${hex(app)}.sig`, cosignManifest("someone-else"));
    await expect(copyCosignTags(registry.client, "dev/app", "qa/app", app)).rejects.toThrow(/qa\/app:sha256-[0-9a-f]{64}\.sig already holds sha256:[0-9a-f]{64}, not the signatures dev\/app:.* it is refused, not overwritten/);
    expect(registry.tagged.get(`qa/app:sha256-${hex(app)}.sig`)).toBe(foreign);
  });

  it("copyImage writes the signatures before the image's tag, and backfills them when the tag is there already; without copySignatures, none", async () => {
    const { registry, app } = world();
    await copyImage(registry.client, { sourceRepository: "dev/app", digest: app, targetRepository: "stable/app", tag: "1.0", immutable: true, copySignatures: true });
    expect(registry.writes).toEqual([`stable/app:sha256-${hex(app)}.sig`, `stable/app:sha256-${hex(app)}.att`, "stable/app:1.0"]);

    const plain = world();
    await copyImage(plain.registry.client, { sourceRepository: "dev/app", digest: plain.app, targetRepository: "staging/app", tag: "1.0", immutable: true });
    expect(plain.registry.writes).toEqual(["staging/app:1.0"]);
    // Promoted before signatures travelled: the next copy brings them, the image tag untouched.
    await copyImage(plain.registry.client, { sourceRepository: "dev/app", digest: plain.app, targetRepository: "staging/app", tag: "1.0", immutable: true, copySignatures: true });
    expect(plain.registry.writes).toEqual(["staging/app:1.0", `staging/app:sha256-${hex(plain.app)}.sig`, `staging/app:sha256-${hex(plain.app)}.att`]);
  });

  it("an unsigned source promotes as before (no cosign tags, no error)", async () => {
    const registry = new MemoryRegistry("127.0.0.1:5000");
    const digest = registry.add("dev/bare", "1.0", image("bare"));
    expect(await copyImage(registry.client, { sourceRepository: "dev/bare", digest, targetRepository: "stable/bare", tag: "1.0", immutable: true, copySignatures: true })).toEqual({ created: true, digest });
    expect(registry.writes).toEqual(["stable/bare:1.0"]);
  });

  it("with the gate's verified manifests, copies exactly those by digest, whatever the source's tags hold by then, and no tag it did not verify", async () => {
    const { registry, app } = world();
    const sigTag = `sha256-${hex(app)}.sig`;
    const verified = { [sigTag]: registry.tagged.get(`dev/app:${sigTag}`) as string };
    // After the gate: the source's .sig swapped for another key's, and an .att the gate did not see.
    registry.add("dev/app", sigTag, cosignManifest("swapped-in"));
    const { copied } = await copyCosignTags(registry.client, "dev/app", "stable/app", app, verified);
    expect(copied).toEqual([sigTag]);
    expect(registry.tagged.get(`stable/app:${sigTag}`)).toBe(verified[sigTag]);
    expect(registry.tagged.has(`stable/app:sha256-${hex(app)}.att`)).toBe(false);
    // An empty record (a gate that verified nothing to carry) copies none, whatever the source holds.
    const none = world();
    expect(await copyCosignTags(none.registry.client, "dev/app", "stable/app", none.app, {})).toEqual({ copied: [] });
    expect(none.registry.writes).toEqual([]);
    // Through copyImage, as the provider calls it.
    const again = world();
    const before = { [sigTag]: again.registry.tagged.get(`dev/app:${sigTag}`) as string };
    again.registry.add("dev/app", sigTag, cosignManifest("swapped-in"));
    await copyImage(again.registry.client, { sourceRepository: "dev/app", digest: again.app, targetRepository: "stable/app", tag: "1.0", immutable: true, copySignatures: true, signatures: before });
    expect(again.registry.tagged.get(`stable/app:${sigTag}`)).toBe(before[sigTag]);
  });

  it("signatures is a provider input checked for its form, and a change of it alone is no diff (a copy made already is not made again)", () => {
    const inputs = { registry: "r:5000", sourceRepository: "a/x", digest: `sha256:${"a".repeat(64)}`, targetRepository: "b/x", tag: "1.0", immutable: true, copySignatures: true };
    const signatures = { [`sha256-${"a".repeat(64)}.sig`]: `sha256:${"b".repeat(64)}` };
    expect(parseRegistryCopyInputs(inputs).signatures).toBeUndefined();
    expect(parseRegistryCopyInputs({ ...inputs, signatures }).signatures).toEqual(signatures);
    expect(() => parseRegistryCopyInputs({ ...inputs, signatures: { "1.0": `sha256:${"b".repeat(64)}` } })).toThrow(/signatures\["1\.0"\] must map a sha256-<hex>\.sig or \.att tag/);
    expect(diffRegistryCopy(inputs, { ...inputs, signatures })).toEqual([]);
    expect(diffRegistryCopy({ ...inputs, signatures }, { ...inputs, digest: `sha256:${"c".repeat(64)}`, signatures: {} })).toEqual(["digest"]);
  });

  it("copySignatures is a provider input, and a change of it is a diff", () => {
    const inputs = { registry: "r:5000", sourceRepository: "a/x", digest: `sha256:${"a".repeat(64)}`, targetRepository: "b/x", tag: "1.0", immutable: true };
    expect(parseRegistryCopyInputs(inputs).copySignatures).toBe(false);
    expect(parseRegistryCopyInputs({ ...inputs, copySignatures: true }).copySignatures).toBe(true);
    expect(diffRegistryCopy(inputs, { ...inputs, copySignatures: true })).toEqual(["copySignatures"]);
  });
});

describe("what the promotion gate verifies", () => {
  const source = { layer: "multi", kind: "service", image: "multi", tag: "1.0", ref: "r/dev/multi:1.0", digestRef: `r/dev/multi@sha256:${"1".repeat(64)}`, parent: null };
  const target: PromotionTarget = { source, sourceRepository: "dev/multi", digest: `sha256:${"1".repeat(64)}`, targetRepository: "stable/multi", tag: "1.0", ref: "r/stable/multi:1.0" };

  it("every image and index it would copy, in the source repository, with an index's platform images, each to be admitted into the target repository", () => {
    const children = new Map([[target.digest, [{ digest: `sha256:${"2".repeat(64)}`, platform: "linux/amd64" }, { digest: `sha256:${"3".repeat(64)}`, platform: "linux/arm64" }]]]);
    expect(gateTargets([target], "r", children)).toEqual([
      { layer: "multi", digestRef: `r/dev/multi@sha256:${"1".repeat(64)}`, publishedAs: target.targetRepository },
      { layer: "multi", platform: "linux/amd64", digestRef: `r/dev/multi@sha256:${"2".repeat(64)}`, publishedAs: target.targetRepository },
      { layer: "multi", platform: "linux/arm64", digestRef: `r/dev/multi@sha256:${"3".repeat(64)}`, publishedAs: target.targetRepository },
    ]);
  });

  it("one paragraph per refused image, none for admitted ones; the message says nothing was copied", () => {
    const admitted: ImageVerdict = { layer: "a", digestRef: "r/x@sha256:1", admitted: true, reviewed: "yes", failures: [] };
    const refused: ImageVerdict = { layer: "b", platform: "linux/arm64", digestRef: "r/y@sha256:2", admitted: false, reviewed: "could not tell", failures: [{ what: "it has no signature by a trusted key (keys/ci.pub)", fix: "sign it" }] };
    const refusals = promotionRefusals([admitted, refused]);
    expect(refusals).toEqual(["b (linux/arm64) r/y@sha256:2 is refused: it has no signature by a trusted key (keys/ci.pub); fix: sign it."]);
    expect(refusalMessage(refusals, 2, "Pulumi.stable.yaml")).toMatch(/^the promotion is refused: 1 of 2 images did not pass strata:trust \(Pulumi\.stable\.yaml\); nothing was copied and this channel's tags are unchanged\.\n\nb \(linux\/arm64\)/);
  });
});

describe("isIndexManifest: an index is known by its bytes, not only by the registry's header", () => {
  const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  const OCI_IMAGE = "application/vnd.oci.image.manifest.v1+json";
  it("an index whose Content-Type has parameters, or is missing, is still an index (the gate verifies its platform images)", () => {
    expect(isIndexManifest(`${OCI_INDEX}; charset=utf-8`, {})).toBe(true);
    expect(isIndexManifest("", { manifests: [] })).toBe(true);
    expect(isIndexManifest("application/octet-stream", { manifests: [{ digest: "sha256:" + "a".repeat(64) }] })).toBe(true);
    expect(isIndexManifest(OCI_IMAGE, { mediaType: "application/vnd.docker.distribution.manifest.list.v2+json" })).toBe(true);
  });
  it("an image is not an index, whatever parameters its header has", () => {
    const image = { mediaType: OCI_IMAGE, layers: [] };
    const untyped = { layers: [] };
    expect(isIndexManifest(OCI_IMAGE, untyped)).toBe(false);
    expect(isIndexManifest(`${OCI_IMAGE}; charset=utf-8`, image)).toBe(false);
    expect(isIndexManifest("", {})).toBe(false);
  });
});

describe("deleteCopy: a copy's tag removed by deleting its manifest, never another tag with it", () => {
  it("deletes the manifest when no other tag holds it, then its .sig, its .att last", async () => {
    const { registry, app } = world();
    const sig = registry.tagged.get(`dev/app:sha256-${hex(app)}.sig`);
    const att = registry.tagged.get(`dev/app:sha256-${hex(app)}.att`);
    expect(await deleteCopy(registry.client, "dev/app", "1.0", app)).toEqual({ deleted: true, platformImages: [], signatures: [`sha256-${hex(app)}.sig`, `sha256-${hex(app)}.att`] });
    expect(registry.deletes).toEqual([`dev/app@${app}`, `dev/app@${sig}`, `dev/app@${att}`]);
    expect(await registry.tags("dev/app")).toEqual([]);
  });

  it("deletes an index copy first, then the platform images only it held, then every deleted manifest's signatures", async () => {
    const { registry, index, platforms } = world();
    const signatures = [index, ...platforms].map((digest) => registry.tagged.get(`dev/multi:sha256-${hex(digest)}.sig`) as string);
    expect(await deleteCopy(registry.client, "dev/multi", "1.0", index)).toEqual({ deleted: true, platformImages: platforms, signatures: [index, ...platforms].map((digest) => `sha256-${hex(digest)}.sig`) });
    expect(registry.deletes).toEqual([index, ...platforms, ...signatures].map((digest) => `dev/multi@${digest}`));
    expect(await registry.tags("dev/multi")).toEqual([]);
    for (const digest of [index, ...platforms]) expect(await registry.manifest("dev/multi", digest)).toBeUndefined();
  });

  it("keeps a platform image, and its signatures, that another tag holds; deletes the rest of the index copy", async () => {
    const { registry, index, platforms } = world();
    const [amd64, arm64] = platforms as [string, string];
    registry.tagged.set("dev/multi:0.9", amd64);
    expect(await deleteCopy(registry.client, "dev/multi", "1.0", index)).toEqual({ deleted: true, platformImages: [arm64], signatures: [index, arm64].map((digest) => `sha256-${hex(digest)}.sig`) });
    expect(await registry.tags("dev/multi")).toEqual(["0.9", `sha256-${hex(amd64)}.sig`]);
    expect((await registry.manifest("dev/multi", amd64))?.digest).toBe(amd64);
  });

  it("keeps what a tag written while the copy was deleted holds: the tags are read again before the rest goes", async () => {
    const { registry, index, platforms } = world();
    const [amd64, arm64] = platforms as [string, string];
    // Another run promotes an index over the same amd64 image under 2.0 just as the copy is deleted.
    const client = clientWith(registry, {
      deleteManifest: async (repository: string, digest: string) => {
        await registry.deleteManifest(repository, digest);
        if (digest === index) registry.add("dev/multi", "2.0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: amd64 }] }, OCI_INDEX);
      },
    });
    expect(await deleteCopy(client, "dev/multi", "1.0", index)).toEqual({ deleted: true, platformImages: [arm64], signatures: [index, arm64].map((digest) => `sha256-${hex(digest)}.sig`) });
    expect((await registry.manifest("dev/multi", amd64))?.digest).toBe(amd64);
    expect(await registry.manifest("dev/multi", `sha256-${hex(amd64)}.sig`)).toBeDefined();
  });

  it("keeps what a .sig or .att tag named after the copy points at when another tag holds it or an index lists it (a pusher's forgery)", async () => {
    const { registry, app, index, platforms } = world();
    const amd64 = platforms[0] as string;
    // In dev/multi: the copy 2.0's .sig tag pointed at release 1.0's platform image.
    const copy = registry.add("dev/multi", "2.0", image("copy"));
    registry.tagged.set(`dev/multi:sha256-${hex(copy)}.sig`, amd64);
    expect(await deleteCopy(registry.client, "dev/multi", "2.0", copy)).toEqual({ deleted: true, platformImages: [], signatures: [] });
    expect(registry.deletes).toEqual([`dev/multi@${copy}`]);
    expect((await registry.manifest("dev/multi", amd64))?.digest).toBe(amd64);
    expect((await registry.manifest("dev/multi", "1.0"))?.digest).toBe(index);
    // In dev/app: the copy 2.0's .att tag pointed at release 1.0's own .sig manifest.
    const releaseSig = registry.tagged.get(`dev/app:sha256-${hex(app)}.sig`) as string;
    const other = registry.add("dev/app", "2.0", image("other-copy"));
    registry.tagged.set(`dev/app:sha256-${hex(other)}.att`, releaseSig);
    expect(await deleteCopy(registry.client, "dev/app", "2.0", other)).toEqual({ deleted: true, platformImages: [], signatures: [] });
    expect(registry.tagged.get(`dev/app:sha256-${hex(app)}.sig`)).toBe(releaseSig);
  });

  it("a delete stopped after the copy leaves garbage, never a tag over a broken index; its next try deletes nothing more", async () => {
    const { registry, index, platforms } = world();
    const client = clientWith(registry, {
      deleteManifest: async (repository: string, digest: string) => {
        if (digest !== index) throw new Error("DELETE: 503");
        await registry.deleteManifest(repository, digest);
      },
    });
    await expect(deleteCopy(client, "dev/multi", "1.0", index)).rejects.toThrow(/503/);
    expect(await registry.manifest("dev/multi", "1.0")).toBeUndefined();
    for (const digest of platforms) expect((await registry.manifest("dev/multi", digest))?.digest).toBe(digest);
    expect(await deleteCopy(registry.client, "dev/multi", "1.0", index)).toEqual({ deleted: false, gone: true });
  });

  it("deletes nothing more when the tags read after the copy went leave out one the registry answers for", async () => {
    const { registry, index, platforms } = world();
    registry.tagged.set("dev/multi:0.9", platforms[0] as string);
    const client = clientWith(registry, {
      deleteManifest: async (repository: string, digest: string) => {
        await registry.deleteManifest(repository, digest);
        registry.unlisted.add("dev/multi:0.9");
      },
    });
    await expect(deleteCopy(client, "dev/multi", "1.0", index)).rejects.toThrow(/leaves out 0\.9, which the registry answers for .*whether a tag holds what sha256:[0-9a-f]{64} held, and deletes nothing more/);
    expect(registry.deletes).toEqual([`dev/multi@${index}`]);
  });

  it("a tag another run moved since holds what it holds now: kept when its index lists the copy, else only the copy's old manifest goes", async () => {
    const { registry, app } = world();
    // The tag now holds an index over the copy (a layer made multi-platform over it): deleting the copy would break it.
    const over = registry.add("dev/app", "1.0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: app }] }, OCI_INDEX);
    expect(await deleteCopy(registry.client, "dev/app", "1.0", app)).toEqual({ deleted: false, keptFor: "1.0 (an image of its index)" });
    expect(registry.deletes).toEqual([]);
    expect((await registry.manifest("dev/app", "1.0"))?.digest).toBe(over);
    // The tag now holds another image: the copy's own manifest and signatures go, the tag stays.
    const other = registry.add("dev/app", "1.0", image("other"));
    expect(await deleteCopy(registry.client, "dev/app", "1.0", app)).toEqual({ deleted: true, platformImages: [], signatures: [`sha256-${hex(app)}.sig`, `sha256-${hex(app)}.att`] });
    expect((await registry.manifest("dev/app", "1.0"))?.digest).toBe(other);
    expect(await registry.manifest("dev/app", app)).toBeUndefined();
  });

  it("a tag moved to another index over one of the copy's platform images keeps that image; the copy and the rest go", async () => {
    const { registry, index, platforms } = world();
    const [amd64, arm64] = platforms as [string, string];
    registry.add("dev/multi", "1.0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: amd64 }] }, OCI_INDEX);
    expect(await deleteCopy(registry.client, "dev/multi", "1.0", index)).toEqual({ deleted: true, platformImages: [arm64], signatures: [index, arm64].map((digest) => `sha256-${hex(digest)}.sig`) });
    expect((await registry.manifest("dev/multi", amd64))?.digest).toBe(amd64);
    expect(await registry.manifest("dev/multi", index)).toBeUndefined();
  });

  it("keeps it when another tag holds the same manifest (an adoption of the promoted tag, a bump over unchanged content)", async () => {
    const { registry, app } = world();
    registry.tagged.set("dev/app:1.1", app);
    expect(await deleteCopy(registry.client, "dev/app", "1.0", app)).toEqual({ deleted: false, keptFor: "1.1" });
    expect(registry.deletes).toEqual([]);
    expect((await registry.manifest("dev/app", "1.1"))?.digest).toBe(app);
  });

  it("deletes nothing when the registry does not answer the tag list", async () => {
    const { registry, app } = world();
    registry.tagListFails = true;
    await expect(deleteCopy(registry.client, "dev/app", "1.0", app)).rejects.toThrow(/tag list of dev\/app: 503/);
    expect(registry.deletes).toEqual([]);
  });

  it("keeps it when another tag's index lists it (a layer made multi-platform over an unchanged image), which the delete would break", async () => {
    const { registry, platforms } = world();
    const amd64 = platforms[0] as string;
    registry.tagged.set("dev/multi:0.9", amd64);
    expect(await deleteCopy(registry.client, "dev/multi", "0.9", amd64)).toEqual({ deleted: false, keptFor: "1.0 (an image of its index)" });
    expect(registry.deletes).toEqual([]);
  });

  it("deletes nothing when the tag list leaves out the copy's own tag while the registry answers for it (a list that is not whole); a tag already gone is left so", async () => {
    const { registry, app } = world();
    // A release tag on the same manifest the list also leaves out: deleting by digest would take it.
    registry.tagged.set("dev/app:1.1", app);
    registry.unlisted.add("dev/app:1.0");
    registry.unlisted.add("dev/app:1.1");
    await expect(deleteCopy(registry.client, "dev/app", "1.0", app)).rejects.toThrow(`the tag list of dev/app at 127.0.0.1:5000 leaves out 1.0, which the registry answers for (${app}): the list is not whole, so Strata cannot tell which other tags hold ${app}, and deletes nothing`);
    expect(registry.deletes).toEqual([]);
    // The tag gone (deleted by hand): nothing is deleted, whatever else holds the manifest.
    registry.tagged.delete("dev/app:1.0");
    expect(await deleteCopy(registry.client, "dev/app", "1.0", app)).toEqual({ deleted: false, gone: true });
    expect(registry.deletes).toEqual([]);
    expect((await registry.manifest("dev/app", "1.1"))?.digest).toBe(app);
  });
});

describe("deleteCopy and deleteOrphan read a listed tag whose manifest is not found as a disagreement, never as holding nothing", () => {
  it("deleteCopy deletes nothing when another listed tag's manifest answers not found and the list, read again, still names it", async () => {
    const { registry, app } = world();
    registry.tagged.set("dev/app:2.0", app);
    const client = clientWith(registry, {
      manifest: async (repository: string, reference: string) => (reference === "2.0" ? undefined : registry.manifest(repository, reference)),
    });
    await expect(deleteCopy(client, "dev/app", "1.0", app)).rejects.toThrow(/^dev\/app:2\.0 is in the tag list of dev\/app at 127\.0\.0\.1:5000, read twice, but its manifest answers "not found"/);
    expect(registry.deletes).toEqual([]);
  });

  it("deleteOrphan deletes the image, then its .sig, then its .att; and nothing when a tag holds it again", async () => {
    const { registry, app } = world();
    const orphanOf = (subject: string) => ({ repository: "dev/app", subject, signatures: [`sha256-${hex(subject)}.att`, `sha256-${hex(subject)}.sig`].map((tag) => ({ tag, digest: registry.tagged.get(`dev/app:${tag}`) as string })) });
    // Tagged again (a run pushed the same bytes since the listing): kept, nothing deleted.
    expect(await deleteOrphan(registry.client, orphanOf(app), await registry.tags("dev/app"))).toEqual({ keptFor: "1.0" });
    expect(registry.deletes).toEqual([]);
    // Held by an index only: kept too.
    registry.tagged.delete("dev/app:1.0");
    registry.add("dev/app", "2.0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: app }] }, OCI_INDEX);
    expect(await deleteOrphan(registry.client, orphanOf(app), await registry.tags("dev/app"))).toEqual({ keptFor: "2.0 (an image of its index)" });
    expect(registry.deletes).toEqual([]);
    // No tag holds it: the image, then the .sig, the .att last.
    registry.tagged.delete("dev/app:2.0");
    const orphan = orphanOf(app);
    expect(await deleteOrphan(registry.client, orphan, await registry.tags("dev/app"))).toEqual({ deleted: [`sha256-${hex(app)}.sig`, `sha256-${hex(app)}.att`] });
    expect(registry.deletes).toEqual([`dev/app@${app}`, `dev/app@${orphan.signatures[1]?.digest}`, `dev/app@${orphan.signatures[0]?.digest}`]);
  });

  it("deleteOrphan neither deletes again nor says deleted a signature another clean-up took since the listing", async () => {
    const { registry, app } = world();
    registry.tagged.delete("dev/app:1.0");
    const orphan = { repository: "dev/app", subject: app, signatures: [`sha256-${hex(app)}.att`, `sha256-${hex(app)}.sig`].map((tag) => ({ tag, digest: registry.tagged.get(`dev/app:${tag}`) as string })) };
    const listedFirst = await registry.tags("dev/app");
    // Another clean-up deleted the .sig, then stopped.
    registry.tagged.delete(`dev/app:sha256-${hex(app)}.sig`);
    expect(await deleteOrphan(registry.client, orphan, listedFirst)).toEqual({ deleted: [`sha256-${hex(app)}.att`] });
    expect(registry.deletes).toEqual([`dev/app@${app}`, `dev/app@${orphan.signatures[0]?.digest}`]);
  });

  it("deleteOrphan deletes nothing when its second read of the tags is not whole, or names a tag whose manifest is not found; nothing when another clean-up took it", async () => {
    const { registry, app } = world();
    registry.tagged.delete("dev/app:1.0");
    registry.tagged.set("dev/app:0.9", registry.add("dev/app", undefined, image("older")));
    const orphan = { repository: "dev/app", subject: app, signatures: [`sha256-${hex(app)}.sig`, `sha256-${hex(app)}.att`].map((tag) => ({ tag, digest: registry.tagged.get(`dev/app:${tag}`) as string })) };
    const listedFirst = await registry.tags("dev/app");
    // A run pushed the same bytes under 1.1 since the listing, and the list read now drops a page:
    // 0.9, listed first and still answered for, and 1.1. Its own cosign tags are named.
    registry.tagged.set("dev/app:1.1", app);
    for (const tag of ["0.9", "1.1"]) registry.unlisted.add(`dev/app:${tag}`);
    await expect(deleteOrphan(registry.client, orphan, listedFirst)).rejects.toThrow("the tag list of dev/app at 127.0.0.1:5000 leaves out 0.9, which the registry answers for");
    expect(registry.deletes).toEqual([]);
    // The list read now leaves out the orphan's own tags (a 404 read as no repository would leave out all).
    registry.unlisted.clear();
    for (const tag of ["1.1", ...orphan.signatures.map((signature) => signature.tag)]) registry.unlisted.add(`dev/app:${tag}`);
    await expect(deleteOrphan(registry.client, orphan, listedFirst)).rejects.toThrow(`the tag list of dev/app at 127.0.0.1:5000 leaves out sha256-${hex(app)}.att, which the registry answers for`);
    expect(registry.deletes).toEqual([]);
    registry.unlisted.clear();
    // 1.1 listed, its manifest "not found": the answers disagree, nothing deleted.
    const disagreeing = clientWith(registry, {
      manifest: async (repository: string, reference: string) => (reference === "1.1" ? undefined : registry.manifest(repository, reference)),
    });
    await expect(deleteOrphan(disagreeing, orphan, listedFirst)).rejects.toThrow(/^dev\/app:1\.1 is in the tag list of dev\/app at 127\.0\.0\.1:5000, read twice, but its manifest answers "not found".*deletes nothing more/);
    expect(registry.deletes).toEqual([]);
    // Its signatures gone since the listing (another clean-up): left so.
    registry.tagged.delete("dev/app:1.1");
    for (const signature of orphan.signatures) registry.tagged.delete(`dev/app:${signature.tag}`);
    expect(await deleteOrphan(registry.client, orphan, listedFirst)).toEqual({ gone: true });
    expect(registry.deletes).toEqual([]);
  });
});

describe("groupTags: every tag of a group with the manifest it holds, or an error", () => {
  /** The world's registry with a repository list, and a tag whose manifest answers "not found" while it stays listed. */
  function listing(): { registry: MemoryRegistry; client: RegistryClient; vanishing: Set<string> } {
    const { registry } = world();
    const vanishing = new Set<string>();
    const client = clientWith(registry, {
      repositories: async () => ["dev/app", "dev/multi", "other/app"],
      manifest: async (repository: string, reference: string) => (vanishing.has(`${repository}:${reference}`) ? undefined : registry.manifest(repository, reference)),
    });
    return { registry, client, vanishing };
  }

  it("stops when a listed tag's manifest answers not found and the list, read again, still names it; leaves out one deleted meanwhile", async () => {
    const { registry, client, vanishing } = listing();
    expect((await groupTags(client, "dev")).map((entry) => `${entry.repository}:${entry.tag}`)).toContain("dev/app:1.0");
    vanishing.add("dev/app:1.0");
    await expect(groupTags(client, "dev")).rejects.toThrow(/^dev\/app:1\.0 is in the tag list of dev\/app at 127\.0\.0\.1:5000, read twice, but its manifest answers "not found": the registry's answers disagree/);
    // Deleted between the list and the read: the second list no longer names it.
    const tags = registry.tags.bind(registry);
    let appLists = 0;
    Object.assign(client, { tags: async (repository: string) => (repository === "dev/app" && (appLists += 1) > 1 ? (await tags(repository)).filter((tag) => tag !== "1.0") : tags(repository)) });
    const found = (await groupTags(client, "dev")).map((entry) => `${entry.repository}:${entry.tag}`);
    expect(found).not.toContain("dev/app:1.0");
    expect(found).toContain("dev/multi:1.0");
  });
});

describe("names from a source stack's outputs go into registry addresses only as the spec spells them", () => {
  const { config } = resolveStackConfig({ values: { registry: "127.0.0.1:5000", osRelease: "debian12", productVersion: "mos9.0", channel: "stable", promoteFrom: "staging", immutable: true }, file: "Pulumi.stable.yaml", env: {} });
  const layer = (image: string, tag: string): SourceLayer => ({ layer: "keystone", kind: "image", image, tag, ref: "x", digestRef: `127.0.0.1:5000/debian12-mos9.0-staging/keystone/linux-arm64@sha256:${"c".repeat(64)}`, parent: null });

  it("planPromotion refuses a tag that is not a version tag (a path, cosign's) and an image that is not a repository path, naming the file and field", () => {
    for (const [image, tag, said] of [
      ["keystone/linux-arm64", "../../manifests/2.0", 'names the tag "../../manifests/2.0", which is not a version tag'],
      ["keystone/linux-arm64", "%2e%2e", 'names the tag "%2e%2e"'],
      ["keystone", `sha256-${"c".repeat(64)}.att`, "not cosign's sha256-<hex>.sig/.att"],
      ["keystone/../other", "1.0-p0", 'names the image "keystone/../other", which is not a repository path'],
    ] as const) {
      const plan = planPromotion({ keystone: layer(image, tag) }, config!, "Pulumi.stable.yaml");
      expect(plan.targets, tag).toEqual([]);
      expect(plan.problems, tag).toEqual([expect.objectContaining({ file: "Pulumi.stable.yaml", field: "strata:promoteFrom", message: expect.stringContaining(said), fix: expect.stringContaining("run pulumi up on the source channel again") })]);
    }
    expect(planPromotion({ keystone: layer("keystone/linux-arm64", "1.0-p0") }, config!, "Pulumi.stable.yaml").problems).toEqual([]);
  });

  it("the registry client sends nothing about a name holding a path step, whoever asks", async () => {
    const sent: string[] = [];
    const client = new RegistryClient({ registry: "127.0.0.1:5999", scheme: "http", dockerConfigDir: "/nonexistent", fetch: (async (input: string | URL) => (sent.push(String(input)), new Response("{}"))) as typeof fetch });
    const digest = `sha256:${"c".repeat(64)}`;
    for (const attempt of [
      () => client.putManifest("stable/keystone/linux-arm64", "../../manifests/2.0", Buffer.from("{}"), OCI_MANIFEST),
      () => client.manifest("stable/keystone", "%2e%2e"),
      () => client.deleteManifest("stable/keystone/..", digest),
      () => client.tags("stable/../dev"),
      () => client.blobExists("stable/keystone", "../x"),
      () => client.mountBlob("dev/keystone/..", "stable/keystone", digest),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ fault: "malformed", message: expect.stringMatching(/^Strata sends no request to the registry at 127\.0\.0\.1:5999 about .*: ".*" is not a (repository path|tag or digest|digest)/) });
    }
    expect(sent.filter((url) => !url.endsWith("/v2/"))).toEqual([]);
  });
});
