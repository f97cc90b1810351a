/**
 * `strata ci-clean`'s reads, deletes and output on a registry in memory: the change's tags and
 * signatures, a tag sharing a release manifest, the change's images written over (orphans) and
 * another stack's orphan, in the order a stopped clean-up can resume from.
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CosignKey, PREDICATE_TYPES, unlockCosignKey } from "../../src/core/cosign-format.js";
import { renderCiCleanJson, renderCiCleanText } from "../../src/cli/ci-clean.js";
import { ciCleanFlow } from "../../src/engine/ci-clean-flow.js";
import { cleanChange } from "../../src/registry/ci-clean.js";
import { RegistryError } from "../../src/registry/client.js";
import { deleteOrphan } from "../../src/registry/copy.js";
import { attestImage, signImages } from "../../src/registry/signatures.js";
import { MemoryRegistry, sha256 } from "../helpers/memory-registry.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/cosign");
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const REPO = "dev/app";
const CI_STACK = "dev-ci-4242";
const hex = (digest: string): string => digest.slice("sha256:".length);

let key: CosignKey;
beforeAll(async () => {
  key = await unlockCosignKey(readFileSync(path.join(fixtures, "cosign.key"), "utf8"), "test-only-passphrase");
});

/** An image (config and one layer) in REPO, under `tag` or under no tag; its digest. */
async function putImage(registry: MemoryRegistry, name: string, tag?: string): Promise<string> {
  const config = await registry.putBlob(REPO, Buffer.from(`{"name":"${name}"}`));
  const layer = await registry.putBlob(REPO, Buffer.from(`layer of ${name}`));
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config, size: 1 }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer, size: 1 }] }));
  return registry.putManifest(REPO, tag ?? sha256(bytes), bytes);
}

/** Signs and attests an image as a run on `stack` does: its .sig, and an .att with its provenance. */
async function signAndAttest(registry: MemoryRegistry, digest: string, stack: string): Promise<void> {
  const ref = `${registry.registry}/${REPO}@${digest}`;
  await signImages(registry, [ref], key);
  await attestImage(registry, ref, [{ predicateType: PREDICATE_TYPES.slsaprovenance1, predicate: Buffer.from(JSON.stringify({ buildDefinition: { externalParameters: { stack } }, runDetails: {} })) }], key);
}

/**
 * dev/app: the release 1.0 (signed by dev); the change's CI tag 1.0-p0-4242_2 on an image of its own
 * (signed by the CI stack); its 1.0-p0-4242_1 on the release's very manifest (a rebuild of the same
 * bytes); an image patchset 1 wrote and patchset 2 wrote over (no tag, its signatures the CI
 * stack's: the change's orphan); and an untagged image signed by dev (not the change's).
 */
async function world(): Promise<{ registry: MemoryRegistry; release: string; ci: string; orphan: string; foreign: string }> {
  const registry = new MemoryRegistry();
  const release = await putImage(registry, "release", "1.0-p0");
  await signAndAttest(registry, release, "dev");
  registry.tagged.set(`${REPO}:1.0-p0-4242_1`, release);
  const ci = await putImage(registry, "ci", "1.0-p0-4242_2");
  await signAndAttest(registry, ci, CI_STACK);
  const orphan = await putImage(registry, "written-over");
  await signAndAttest(registry, orphan, CI_STACK);
  const foreign = await putImage(registry, "foreign");
  await signAndAttest(registry, foreign, "dev");
  return { registry, release, ci, orphan, foreign };
}

const request = { group: "dev", change: 4242, ciStack: CI_STACK, dryRun: false };
const run = { change: 4242, group: "dev", registry: "registry.test:5000", ciStack: CI_STACK, dryRun: false, stackRemoved: true };
const manifestOf = (registry: MemoryRegistry, tag: string): string => registry.tagged.get(`${REPO}:${tag}`) as string;

describe("ci-clean in a registry", () => {
  it("a dry run reads and plans, deletes nothing, and says what it would delete and keep", async () => {
    const { registry, ci, orphan, foreign } = await world();
    const before = new Map(registry.tagged);
    const outcome = await cleanChange(registry.client, { ...request, dryRun: true });
    expect(registry.deletes).toEqual([]);
    expect(registry.tagged).toEqual(before);
    expect(outcome.plan.remove.map((entry) => entry.tag).sort()).toEqual(["1.0-p0-4242_2", `sha256-${hex(ci)}.att`, `sha256-${hex(ci)}.sig`].sort());
    expect(outcome.plan.keep).toEqual([expect.objectContaining({ tag: "1.0-p0-4242_1", sharedWith: ["1.0-p0"] })]);
    expect(outcome.orphans.remove.map((entry) => entry.subject)).toEqual([orphan]);
    expect(outcome.orphans.keep).toEqual([expect.objectContaining({ subject: foreign, why: "its provenance names stack dev" })]);
    const text = renderCiCleanText(outcome, { ...run, dryRun: true, stackRemoved: false });
    expect(text).toMatch(new RegExp(`dev/app +1\\.0-p0-4242_2 +would delete +${ci}`));
    expect(text).toMatch(/dev\/app +1\.0-p0-4242_1 +kept: same manifest as 1\.0-p0 /);
    expect(text).toMatch(new RegExp(`dev/app +\\(no tag: written over by a later run\\) +would delete +${orphan}`));
    expect(text).toMatch(/kept the signatures of 1 image\(s\) no tag holds, not shown to be this change's/);
    expect(text).toMatch(/dry run: nothing deleted; stack dev-ci-4242: left as it is\n$/);
    expect(text).not.toMatch(/garbage collection/);
  });

  it("deletes the change's signatures, then its tags, then its orphan image and the orphan's .sig and .att last; every release and other stack's manifest stays", async () => {
    const { registry, release, ci, orphan, foreign } = await world();
    const signatures = (digest: string): string[] => [`sha256-${hex(digest)}.sig`, `sha256-${hex(digest)}.att`].map((tag) => manifestOf(registry, tag));
    const [ciSig, ciAtt] = signatures(ci);
    const [orphanSig, orphanAtt] = signatures(orphan);
    const outcome = await cleanChange(registry.client, request);
    const deleted = registry.deletes.map((entry) => entry.slice(REPO.length + 1));
    expect(deleted.slice(0, 2).sort()).toEqual([ciSig, ciAtt].sort());
    expect(deleted.slice(2)).toEqual([ci, orphan, orphanSig, orphanAtt]);
    // What stays: the release and its signatures, the tag on the release's manifest, the other stack's orphan.
    expect(await registry.tags(REPO)).toEqual(["1.0-p0", "1.0-p0-4242_1", ...[release, foreign].flatMap((digest) => [`sha256-${hex(digest)}.att`, `sha256-${hex(digest)}.sig`])].sort());
    expect(manifestOf(registry, "1.0-p0")).toBe(release);
    expect(outcome.orphans.remove).toEqual([expect.objectContaining({ subject: orphan, signatures: [expect.objectContaining({ tag: `sha256-${hex(orphan)}.att` }), expect.objectContaining({ tag: `sha256-${hex(orphan)}.sig` })] })]);
    const text = renderCiCleanText(outcome, run);
    expect(text).toMatch(/5 tag\(s\) deleted; stack dev-ci-4242: removed\n/);
    expect(text).toMatch(/scripts\/services\.sh gc\n$/);
    // The orphan's rows in the order it was deleted: the image, its .sig, its .att.
    const rows = text.split("\n").filter((line) => line.includes(hex(orphan)) || line.includes(orphan));
    expect(rows.map((line) => line.split(/ {2,}/)[1])).toEqual(["(no tag: written over by a later run)", `sha256-${hex(orphan)}.sig`, `sha256-${hex(orphan)}.att`]);
    const json = JSON.parse(renderCiCleanJson(outcome, run)) as Record<string, unknown>;
    expect(json).toMatchObject({ change: 4242, group: "dev", dryRun: false, stack: CI_STACK, stackRemoved: true, orphansHeldAgain: [], orphansGone: [] });
    expect((json.removed as unknown[]).length).toBe(3);
    expect((json.orphansKept as { subject: string }[]).map((entry) => entry.subject)).toEqual([foreign]);
  });

  it("an orphan a run tagged again after the listing is kept and said so; one whose signatures another clean-up took is said gone; of one half taken, only what this one deleted is said deleted", async () => {
    const held = await world();
    const deleteManifest = held.registry.deleteManifest.bind(held.registry);
    // While the change's own tags go, a run pushes the orphan's bytes again under 1.1-p0.
    held.registry.deleteManifest = async (repository, digest) => {
      await deleteManifest(repository, digest);
      held.registry.tagged.set(`${REPO}:1.1-p0`, held.orphan);
    };
    const outcome = await cleanChange(held.registry.client, request);
    expect(held.registry.deletes).not.toContain(`${REPO}@${held.orphan}`);
    expect(outcome.orphans.remove).toEqual([]);
    expect(outcome.heldAgain).toEqual([{ repository: REPO, subject: held.orphan, holder: "1.1-p0" }]);
    expect(renderCiCleanText(outcome, run)).toMatch(new RegExp(`dev/app +\\(no tag when listed\\) +kept: 1\\.1-p0 holds it again +${held.orphan}`));

    const taken = await world();
    const takenDelete = taken.registry.deleteManifest.bind(taken.registry);
    let once = false;
    taken.registry.deleteManifest = async (repository, digest) => {
      await takenDelete(repository, digest);
      if (once) return;
      once = true;
      // Another clean-up deleted the orphan and its signatures meanwhile.
      for (const tag of [`sha256-${hex(taken.orphan)}.sig`, `sha256-${hex(taken.orphan)}.att`]) await takenDelete(REPO, manifestOf(taken.registry, tag));
      await takenDelete(REPO, taken.orphan);
    };
    const after = await cleanChange(taken.registry.client, request);
    expect(after.gone).toEqual([{ repository: REPO, subject: taken.orphan }]);
    expect(after.orphans.remove).toEqual([]);
    expect(renderCiCleanText(after, run)).toMatch(/\(no tag when listed\) +gone: another clean-up deleted its signatures/);

    // Another clean-up took only the orphan's .sig, then stopped: the .att and the image are this one's, and only they are said deleted.
    const half = await world();
    const halfDelete = half.registry.deleteManifest.bind(half.registry);
    let first = true;
    half.registry.deleteManifest = async (repository, digest) => {
      await halfDelete(repository, digest);
      if (!first) return;
      first = false;
      await halfDelete(REPO, manifestOf(half.registry, `sha256-${hex(half.orphan)}.sig`));
    };
    const halfway = await cleanChange(half.registry.client, request);
    expect(halfway.orphans.remove).toEqual([expect.objectContaining({ subject: half.orphan, signatures: [expect.objectContaining({ tag: `sha256-${hex(half.orphan)}.att` })] })]);
    const text = renderCiCleanText(halfway, run);
    expect(text).not.toMatch(new RegExp(`sha256-${hex(half.orphan)}\\.sig`));
    expect(text).toMatch(/4 tag\(s\) deleted/);
  });

  it("prints its rows in the order it deletes, and its JSON with the keys scripts read", async () => {
    const { registry, ci, orphan } = await world();
    const outcome = await cleanChange(registry.client, { ...request, dryRun: true });
    const tagColumn = renderCiCleanText(outcome, { ...run, dryRun: true, stackRemoved: false }).split("\n").slice(2).map((line) => line.split(/ {2,}/)[1]).filter((tag) => tag !== undefined);
    expect(tagColumn).toEqual([
      ...outcome.plan.remove.map((entry) => entry.tag),
      "1.0-p0-4242_1",
      "(no tag: written over by a later run)", `sha256-${hex(orphan)}.sig`, `sha256-${hex(orphan)}.att`,
    ]);
    // The change's signatures listed before its tag, as they are deleted.
    expect(outcome.plan.remove.map((entry) => entry.tag).indexOf("1.0-p0-4242_2")).toBe(2);
    expect(outcome.plan.remove.map((entry) => entry.tag).slice(0, 2).sort()).toEqual([`sha256-${hex(ci)}.att`, `sha256-${hex(ci)}.sig`]);
    expect(Object.keys(JSON.parse(renderCiCleanJson(outcome, run)) as object)).toEqual(["change", "group", "dryRun", "removed", "kept", "indexEntriesRemoved", "orphansRemoved", "orphansKept", "orphansHeldAgain", "orphansGone", "stack", "stackRemoved"]);
  });

  it("stops before its next delete once told to stop, also between an orphan's deletes", async () => {
    const { registry } = await world();
    const stop = new AbortController();
    const deleteManifest = registry.deleteManifest.bind(registry);
    registry.deleteManifest = async (repository, digest) => {
      await deleteManifest(repository, digest);
      stop.abort(new Error("stopped by SIGTERM"));
    };
    await expect(cleanChange(registry.client, request, stop.signal)).rejects.toThrow("stopped by SIGTERM");
    expect(registry.deletes).toHaveLength(1);
    // Stopped once the orphan's image is gone: its signatures stay, which find it next time.
    const orphaned = await world();
    const stopAtOrphan = new AbortController();
    const orphanDelete = orphaned.registry.deleteManifest.bind(orphaned.registry);
    orphaned.registry.deleteManifest = async (repository, digest) => {
      await orphanDelete(repository, digest);
      if (digest === orphaned.orphan) stopAtOrphan.abort(new Error("stopped by SIGINT"));
    };
    await expect(cleanChange(orphaned.registry.client, request, stopAtOrphan.signal)).rejects.toThrow("stopped by SIGINT");
    expect(orphaned.registry.deletes.at(-1)).toBe(`${REPO}@${orphaned.orphan}`);
    expect(await orphaned.registry.tags(REPO)).toContain(`sha256-${hex(orphaned.orphan)}.sig`);
    // Stopped while deleteOrphan reads the tags again: the orphan's image is not deleted.
    const reading = await world();
    const stopReading = new AbortController();
    const tagsOf = reading.registry.tags.bind(reading.registry);
    let lists = 0;
    reading.registry.tags = async (repository) => {
      // The group's listing reads each repository's tags once; the orphan's re-list is the next.
      if (++lists === 2) stopReading.abort(new Error("stopped by SIGTERM"));
      return tagsOf(repository);
    };
    await expect(cleanChange(reading.registry.client, request, stopReading.signal)).rejects.toThrow("stopped by SIGTERM");
    expect(reading.registry.deletes).not.toContain(`${REPO}@${reading.orphan}`);

    // A failed delete comes back as the client threw it (whether it may have landed is its to say).
    const refused = await world();
    const failure = Object.assign(new RegistryError("DELETE at registry.test:5000: 500", 500, "500"), { unsettled: true });
    refused.registry.deleteManifest = async () => {
      throw failure;
    };
    expect(await cleanChange(refused.registry.client, request).catch((error: unknown) => error)).toBe(failure);
  });

  it("says so when the change has nothing in the group", async () => {
    const registry = new MemoryRegistry();
    await putImage(registry, "release", "1.0-p0");
    const outcome = await cleanChange(registry.client, request);
    expect(registry.deletes).toEqual([]);
    expect(renderCiCleanText(outcome, { ...run, stackRemoved: false })).toBe("no CI tags of change 4242 in registry.test:5000/dev\n0 tag(s) deleted; stack dev-ci-4242: not present\n");
  });
});

describe("ci-clean holds the channel's lock from its first read to its last delete", () => {
  /** The backends lockedWorld made, removed after each test. */
  const backends: string[] = [];
  afterEach(() => {
    for (const dir of backends.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A file backend with the channel's lock folder, and the registry's every call checked against it. */
  async function lockedWorld(): Promise<{ registry: MemoryRegistry; backendDir: string; lockFiles: () => string[]; locksAtCalls: number[] }> {
    const backendDir = mkdtempSync(path.join(tmpdir(), "strata-ci-clean-lock-"));
    backends.push(backendDir);
    mkdirSync(path.join(backendDir, ".pulumi"), { recursive: true });
    writeFileSync(path.join(backendDir, ".pulumi/meta.yaml"), "version: 1\n");
    mkdirSync(path.join(backendDir, ".pulumi/stacks/strata"), { recursive: true });
    writeFileSync(path.join(backendDir, ".pulumi/stacks/strata/dev.json"), "{}");
    const lockDir = path.join(backendDir, ".pulumi/locks/organization/strata/dev");
    const lockFiles = (): string[] => (existsSync(lockDir) ? readdirSync(lockDir) : []);
    const { registry } = await world();
    const locksAtCalls: number[] = [];
    for (const method of ["repositories", "tags", "manifest", "blobStream", "deleteManifest"] as const) {
      const original = (registry[method] as (...args: unknown[]) => Promise<unknown>).bind(registry);
      (registry as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
        locksAtCalls.push(lockFiles().length);
        return original(...args);
      };
    }
    return { registry, backendDir, lockFiles, locksAtCalls };
  }
  const lockOf = (backendDir: string) => ({ backendUrl: `file://${backendDir}`, project: "strata", stack: "dev", env: {}, purpose: "strata ci-clean" });

  it("every registry request of a clean-up is made while the lock is there, and the lock is gone after", async () => {
    const { registry, backendDir, lockFiles, locksAtCalls } = await lockedWorld();
    const { value } = await ciCleanFlow(registry.client, request, lockOf(backendDir), () => undefined);
    expect(registry.deletes.length).toBe(value.plan.remove.length + 3);
    expect(locksAtCalls.length).toBeGreaterThan(10);
    expect(locksAtCalls.every((count) => count === 1)).toBe(true);
    expect(lockFiles()).toEqual([]);
  });

  it("a delete that may have landed (RegistryError.unsettled) keeps the lock (recover releases it later); one the registry refused gives it up", async () => {
    const { registry, backendDir, lockFiles } = await lockedWorld();
    registry.deleteManifest = async () => {
      throw Object.assign(new RegistryError("DELETE at registry.test:5000: connection reset (ECONNRESET)", undefined, "connection reset (ECONNRESET)"), { unsettled: true });
    };
    await expect(ciCleanFlow(registry.client, request, lockOf(backendDir), () => undefined)).rejects.toThrow(/connection reset \(ECONNRESET\); the registry may still carry it out, so stack dev's lock stays/);
    expect(lockFiles()).toHaveLength(1);
    rmSync(path.join(backendDir, ".pulumi/locks"), { recursive: true });
    // A 5xx the client marked so (a proxy's 504): the same.
    registry.deleteManifest = async () => {
      throw Object.assign(new RegistryError("DELETE at registry.test:5000 after 3 attempts: 504", 504, "504"), { unsettled: true });
    };
    await expect(ciCleanFlow(registry.client, request, lockOf(backendDir), () => undefined)).rejects.toThrow(/504; the registry may still carry it out/);
    expect(lockFiles()).toHaveLength(1);
    rmSync(path.join(backendDir, ".pulumi/locks"), { recursive: true });
    registry.deleteManifest = async () => {
      throw new RegistryError("DELETE at registry.test:5000: 400", 400, "400");
    };
    await expect(ciCleanFlow(registry.client, request, lockOf(backendDir), () => undefined)).rejects.toThrow(/: 400$/);
    expect(lockFiles()).toEqual([]);
  });

  it("a SIGTERM during the clean-up stops it before its next delete; the lock goes after the delete in flight", async () => {
    const { registry, backendDir, lockFiles } = await lockedWorld();
    const deleteManifest = registry.deleteManifest.bind(registry);
    let locksAtSecond = -1;
    registry.deleteManifest = async (repository, digest) => {
      if (registry.deletes.length === 0) process.emit("SIGTERM", "SIGTERM");
      else locksAtSecond = lockFiles().length;
      await deleteManifest(repository, digest);
    };
    const notes: string[] = [];
    await expect(ciCleanFlow(registry.client, request, lockOf(backendDir), (text) => notes.push(text))).rejects.toThrow(/^strata ci-clean: stopped by SIGTERM: no delete was sent after the one in flight/);
    expect(registry.deletes).toHaveLength(1);
    expect(locksAtSecond).toBe(-1);
    expect(lockFiles()).toEqual([]);
    expect(notes.join("")).toMatch(/SIGTERM: stopping once the request in flight has ended/);
    expect(process.listenerCount("SIGTERM")).toBe(0);
  });

  it("while another holds it, nothing is read or deleted; a dry run reads without taking it", async () => {
    const { registry, backendDir, lockFiles, locksAtCalls } = await lockedWorld();
    const lockDir = path.join(backendDir, ".pulumi/locks/organization/strata/dev");
    mkdirSync(lockDir, { recursive: true });
    writeFileSync(path.join(lockDir, "0b3c5a1e-7f5e-4a8e-9d7e-3c1f2b4a5d6e.json"), JSON.stringify({ pid: 1, username: "ci", hostname: "runner-1", timestamp: "2026-12-06T10:00:00Z" }));
    await expect(ciCleanFlow(registry.client, request, lockOf(backendDir), () => undefined)).rejects.toThrow(/stack dev is locked by another run, so nothing was changed/);
    expect(locksAtCalls).toEqual([]);
    const { value } = await ciCleanFlow(registry.client, { ...request, dryRun: true }, lockOf(backendDir), () => undefined);
    expect(value.plan.remove.length).toBe(3);
    expect(registry.deletes).toEqual([]);
    expect(lockFiles()).toEqual(["0b3c5a1e-7f5e-4a8e-9d7e-3c1f2b4a5d6e.json"]);
  });
});

describe("ci-clean and cosign tags someone without the key wrote (a pusher's forgeries)", () => {
  const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  const attackerKey: CosignKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const provenance = (stack: string) => [{ predicateType: PREDICATE_TYPES.slsaprovenance1, predicate: Buffer.from(JSON.stringify({ buildDefinition: { externalParameters: { stack } }, runDetails: {} })) }];
  /** A release index 1.1-p0 over an untagged platform image: what the forgeries aim at. */
  async function releaseIndex(registry: MemoryRegistry): Promise<{ platform: string; index: string }> {
    const platform = await putImage(registry, "amd64");
    const index = registry.add(REPO, "1.1-p0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: platform, size: 1, platform: { os: "linux", architecture: "amd64" } }] }, OCI_INDEX);
    return { platform, index };
  }

  it("keeps a release's .sig manifest that a forged .att names as its subject, naming the tag that holds it", async () => {
    const registry = new MemoryRegistry();
    const release = await putImage(registry, "release", "1.0-p0");
    await signAndAttest(registry, release, "dev");
    const releaseSig = manifestOf(registry, `sha256-${hex(release)}.sig`);
    await attestImage(registry, `${registry.registry}/${REPO}@${releaseSig}`, provenance(CI_STACK), attackerKey);
    const outcome = await cleanChange(registry.client, request);
    expect(outcome.orphans.remove).toEqual([]);
    expect(registry.deletes).toEqual([]);
    expect(manifestOf(registry, `sha256-${hex(release)}.sig`)).toBe(releaseSig);
  });

  it("keeps a release index's platform image that a forged orphan's .sig tag points at, saying which tag's index lists it", async () => {
    const registry = new MemoryRegistry();
    const { platform } = await releaseIndex(registry);
    const madeUp = `sha256:${"ab".repeat(32)}`;
    registry.tagged.set(`${REPO}:sha256-${hex(madeUp)}.sig`, platform);
    await attestImage(registry, `${registry.registry}/${REPO}@${madeUp}`, provenance(CI_STACK), attackerKey);
    const outcome = await cleanChange(registry.client, request);
    expect(outcome.orphans.remove).toEqual([]);
    expect(outcome.orphans.keep).toMatchObject([{ subject: madeUp, why: expect.stringContaining("1.1-p0 (an image of its index)") }]);
    expect(registry.deletes).toEqual([]);
    expect(registry.manifests.has(`${REPO}@${platform}`)).toBe(true);
  });

  it("keeps a release index's platform image that a change tag's .sig points at, and deletes the change's own tag", async () => {
    const registry = new MemoryRegistry();
    const { platform } = await releaseIndex(registry);
    const junk = await putImage(registry, "junk", "9.9-p9-4242");
    registry.tagged.set(`${REPO}:sha256-${hex(junk)}.sig`, platform);
    const outcome = await cleanChange(registry.client, request);
    expect(outcome.plan.remove.map((entry) => entry.digest)).toEqual([junk]);
    expect(outcome.plan.keep).toMatchObject([{ tag: `sha256-${hex(junk)}.sig`, sharedWith: ["1.1-p0 (an image of its index)"] }]);
    expect(registry.deletes).toEqual([`${REPO}@${junk}`]);
    expect(registry.manifests.has(`${REPO}@${platform}`)).toBe(true);
  });

  it("deleteOrphan, asked again before it deletes, keeps an orphan one of whose signature manifests an index now lists", async () => {
    const registry = new MemoryRegistry();
    const orphan = await putImage(registry, "written-over");
    await signAndAttest(registry, orphan, CI_STACK);
    const signatures = [`sha256-${hex(orphan)}.sig`, `sha256-${hex(orphan)}.att`].map((tag) => ({ repository: REPO, tag, digest: manifestOf(registry, tag) }));
    const listedFirst = await registry.tags(REPO);
    registry.add(REPO, "2.0", { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: signatures[0]?.digest, size: 1 }] }, OCI_INDEX);
    expect(await deleteOrphan(registry.client, { repository: REPO, subject: orphan, signatures }, listedFirst)).toEqual({ keptFor: `2.0 (an image of its index) (it holds the manifest of sha256-${hex(orphan)}.sig)` });
    expect(registry.deletes).toEqual([]);
  });
});
