/**
 * `strata verify` (issue 29, item 7) without an engine: which images a stack's outputs name (each
 * layer; a multi-platform layer's index and each platform image), the table and paragraphs, the
 * data, the exit code, and the input errors that stop it before anything is verified.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/commands.js";
import { renderVerify, renderVerifyJson, verifyExitCode } from "../../src/cli/verify.js";
import { type ImageVerdict } from "../../src/core/trust-verdict.js";
import { exportedTargets, heldDigests, reportedVerdicts, withIndexEntries, withMissingManifests, withTagChecks } from "../../src/engine/verify-flow.js";
import { type RegistryClient } from "../../src/registry/client.js";
import { scratchDir } from "../helpers/catalog.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const hex = (char: string): string => char.repeat(64);
const ref = (image: string, char: string): string => `127.0.0.1:5000/g/${image}@sha256:${hex(char)}`;

const admitted = (layer: string, char: string, extra: Partial<ImageVerdict> = {}): ImageVerdict => ({
  layer, digestRef: ref(layer, char), admitted: true, signedBy: "keys/ci.pub", commit: "c0ffee".padEnd(40, "0"), clean: true, reviewed: "yes", packages: 12, failures: [], ...extra,
});
const refused = (layer: string, char: string, failures: ImageVerdict["failures"], extra: Partial<ImageVerdict> = {}): ImageVerdict => ({
  layer, digestRef: ref(layer, char), admitted: false, reviewed: "could not tell", failures, ...extra,
});

describe("the images a stack exports", () => {
  it("takes each layer, and for a multi-platform layer its index, each platform image in the index's repository and each per-platform image", () => {
    const { targets, unexpanded } = exportedTargets({
      base: { layer: "base", digestRef: ref("base", "a") },
      tools: { layer: "tools", digestRef: ref("tools", "b"), platforms: { "linux/amd64": ref("tools", "c"), "linux/arm64": ref("tools", "d") } },
      "tools@linux-amd64": { layer: "tools@linux-amd64", digestRef: ref("tools/linux-amd64", "e") },
      "tools@linux-arm64": { layer: "tools@linux-arm64", digestRef: ref("tools/linux-arm64", "f") },
    });
    expect(targets).toEqual([
      { layer: "tools", digestRef: ref("tools", "b") },
      { layer: "tools", platform: "linux/amd64", digestRef: ref("tools", "c") },
      { layer: "tools", platform: "linux/arm64", digestRef: ref("tools", "d") },
      { layer: "tools@linux-amd64", platform: "linux/amd64", digestRef: ref("tools/linux-amd64", "e") },
      { layer: "tools@linux-arm64", platform: "linux/arm64", digestRef: ref("tools/linux-arm64", "f") },
    ]);
    // Without `platforms` (a promoted index looks like any layer): the registry is asked what it is.
    expect(unexpanded).toEqual([{ layer: "base", digestRef: ref("base", "a") }]);
  });

  it("keeps a layer without a pushed digest as a target (the verifier refuses it), never drops it", () => {
    expect(exportedTargets({ local: { layer: "local" } }).unexpanded).toEqual([{ layer: "local", digestRef: "(no digest in the stack's outputs)" }]);
  });
});

describe("strata verify's output", () => {
  const failures = [{ what: "it has no signature by a trusted key (keys/ci.pub: no signature)", fix: "sign it with the CI key: strata up on a stack with strata:signingKey" }];
  const verdicts = [admitted("base", "a"), refused("app", "b", failures, { platform: "linux/arm64", commit: "d".repeat(40), clean: false })];

  it("prints the table (layer, platform, digest, signed by, commit, reviewed, packages, verdict), then a paragraph per refused image", () => {
    const text = renderVerify(verdicts, "stable", "strata:trust in Pulumi.stable.yaml", { ref: "origin/main", commit: "e".repeat(40) });
    const lines = text.split("\n");
    expect(lines[0]).toBe("verify stack stable against strata:trust in Pulumi.stable.yaml (reviewed: in origin/main at eeeeeeeeeeee):");
    expect(lines[1]).toMatch(/^layer\s+platform\s+digest\s+signed by\s+commit\s+reviewed\s+packages\s+verdict$/);
    expect(lines[3]).toMatch(new RegExp(`^base\\s+-\\s+sha256:${hex("a").slice(0, 12)}\\s+keys/ci.pub\\s+c0ffee000000\\s+yes\\s+12\\s+pass$`));
    expect(lines[4]).toMatch(/^app\s+linux\/arm64\s+sha256:b{12}\s+-\s+d{12} \(dirty\)\s+could not tell\s+-\s+REFUSED \(1 failure\)$/);
    expect(text).toContain("1 of 2 images refused:");
    expect(text).toContain(`app (linux/arm64) ${ref("app", "b")} is refused: it has no signature by a trusted key (keys/ci.pub: no signature); fix: sign it with the CI key: strata up on a stack with strata:signingKey.`);
    expect(verifyExitCode(verdicts)).toBe(1);
  });

  it("passes only when every image is admitted, and never on nothing", () => {
    expect(verifyExitCode([admitted("base", "a"), admitted("app", "b")])).toBe(0);
    expect(renderVerify([admitted("base", "a")], "dev", "the key cosign.pub (--key)")).toContain("1 image verified");
    expect(verifyExitCode([])).toBe(1);
  });

  it("prints data with every verdict's fields and failures", () => {
    const data = JSON.parse(renderVerifyJson(verdicts, "stable", "strata:trust in Pulumi.stable.yaml", { ref: "origin/main", commit: "e".repeat(40) })) as { ok: boolean; reviewedRef: string; reviewedCommit: string; images: Record<string, unknown>[] };
    expect(data.ok).toBe(false);
    expect(data.reviewedRef).toBe("origin/main");
    expect(data.reviewedCommit).toBe("e".repeat(40));
    expect(data.images[0]).toEqual({ layer: "base", platform: null, digestRef: ref("base", "a"), admitted: true, signedBy: "keys/ci.pub", commit: "c0ffee".padEnd(40, "0"), clean: true, reviewed: "yes", packages: 12, failures: [] });
    expect(data.images[1]).toMatchObject({ layer: "app", platform: "linux/arm64", admitted: false, signedBy: null, packages: null, failures });
  });
});

describe("strata verify's input errors", () => {
  const project = (stackFile: string): string => {
    const dir = scratchDir("verify-project");
    // The project's own Pulumi.yaml: its config defaults (registry, group parts) are the stack's.
    copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    writeFileSync(path.join(dir, "Pulumi.dev.yaml"), stackFile);
    return dir;
  };
  const strata = async (args: string[], cwd: string): Promise<{ code: number; err: string }> => {
    let err = "";
    const code = await runCli(args, { out: () => undefined, err: (text) => (err += text), env: {}, cwd });
    return { code, err };
  };

  it("refuses a stack with neither a trust policy nor --key, naming the stack file, strata:trust and the fix", async () => {
    const dir = project("config:\n  strata:channel: dev\n");
    const { code, err } = await strata(["verify", "--stack", "dev"], dir);
    expect(code).toBe(1);
    expect(err).toContain("Pulumi.dev.yaml: strata:trust: is not set: stack dev has no trust policy to verify its images against");
    expect(err).toContain("strata verify --stack dev --key cosign.pub");
  });

  it("refuses a --key that is not a readable PEM public key, naming the option", async () => {
    const dir = project("config:\n  strata:channel: dev\n");
    const missing = await strata(["verify", "--stack", "dev", "--key", "nowhere.pub"], dir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/command line: --key: cannot read "nowhere\.pub" .*no such file/);
    writeFileSync(path.join(dir, "cosign.key"), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n");
    const privateKey = await strata(["verify", "--stack", "dev", "--key", "cosign.key"], dir);
    expect(privateKey.code).toBe(1);
    expect(privateKey.err).toContain('command line: --key: "cosign.key" is a private key');
  });

  it("refuses a trust policy with problems, and one whose key file is missing, before anything is verified", async () => {
    const dir = project("config:\n  strata:channel: dev\n  strata:trust:\n    keys: [keys/ci.pub]\n    reviewedRef: HEAD\n");
    const bad = await strata(["verify", "--stack", "dev"], dir);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("strata:trust.reviewedRef");
    const missingKey = project("config:\n  strata:channel: dev\n  strata:trust:\n    keys: [keys/ci.pub]\n    reviewedRef: origin/main\n");
    mkdirSync(path.join(missingKey, "keys"));
    const read = await strata(["verify", "--stack", "dev"], missingKey);
    expect(read.code).toBe(1);
    expect(read.err).toMatch(/Pulumi\.dev\.yaml: strata:trust\.keys\[0\]: cannot read "keys\/ci\.pub"/);
  });

  it("refuses a reviewedRef naming a local branch once, as the policy's problem, before the stack or any image is read", async () => {
    const dir = project("config:\n  strata:channel: dev\n  strata:trust:\n    keys: [keys/ci.pub]\n    reviewedRef: main\n");
    mkdirSync(path.join(dir, "keys"));
    writeFileSync(path.join(dir, "keys/ci.pub"), generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
    // The catalog's checkout: a repository whose main is a local branch (a name the short form passes).
    mkdirSync(path.join(dir, "layers"));
    const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org", GIT_CONFIG_NOSYSTEM: "1" };
    execFileSync("git", ["init", "-q", "-b", "main", dir], { env: gitEnv });
    execFileSync("git", ["-C", dir, "commit", "-q", "--allow-empty", "-m", "one"], { env: gitEnv });
    const { code, err } = await strata(["verify", "--stack", "dev"], dir);
    expect(code).toBe(1);
    expect(err).toContain("1 problem in the Strata input");
    expect(err).toContain("Pulumi.dev.yaml: strata:trust.reviewedRef: cannot say which reviewed commit it names, so no image can be checked against it: the reviewed ref main: refs/heads/main is a local branch");
    // Said before the stack is opened: this project has no stack, and reading one would fail otherwise.
    expect(err).not.toMatch(/stack dev|no stack/i);
  });
});

describe("strata verify checks what each exported tag holds now", () => {
  const verdictOf = (layer: string, digestRef: string, platform?: string): ImageVerdict => ({ layer, digestRef, ...(platform === undefined ? {} : { platform }), admitted: true, signedBy: "keys/ci.pub", commit: "c".repeat(40), clean: true, reviewed: "yes", packages: 3, failures: [] });
  const layers = {
    base: { layer: "base", ref: "127.0.0.1:5000/g/base:1.0-p0", digestRef: ref("base", "a") },
    tools: { layer: "tools", ref: "127.0.0.1:5000/g/tools:1.0-p0", digestRef: ref("tools", "b") },
    "tools@linux-arm64": { layer: "tools@linux-arm64", ref: "127.0.0.1:5000/g/tools-arm64:1.0-p0", digestRef: ref("tools-arm64", "d") },
  };
  const verdicts = [verdictOf("base", ref("base", "a")), verdictOf("tools", ref("tools", "b")), verdictOf("tools", ref("tools", "e"), "linux/arm64"), verdictOf("tools@linux-arm64", ref("tools-arm64", "d"), "linux/arm64")];

  it("tags that hold the exported digests change nothing", () => {
    const held = new Map([["127.0.0.1:5000/g/base:1.0-p0", `sha256:${hex("a")}`], ["127.0.0.1:5000/g/tools:1.0-p0", `sha256:${hex("b")}`], ["127.0.0.1:5000/g/tools-arm64:1.0-p0", `sha256:${hex("d")}`]]);
    expect(withTagChecks(verdicts, layers, held)).toEqual(verdicts);
  });

  it("a tag moved to another digest, or gone, refuses that layer's image alone, saying which", () => {
    const held = new Map<string, string | undefined>([["127.0.0.1:5000/g/base:1.0-p0", `sha256:${hex("f")}`], ["127.0.0.1:5000/g/tools:1.0-p0", `sha256:${hex("b")}`], ["127.0.0.1:5000/g/tools-arm64:1.0-p0", undefined]]);
    const checked = withTagChecks(verdicts, layers, held);
    expect(checked.map((verdict) => verdict.admitted)).toEqual([false, true, true, false]);
    expect(checked[0]?.failures[0]?.what).toBe(`its tag 127.0.0.1:5000/g/base:1.0-p0 now holds sha256:${hex("f")}, not the sha256:${hex("a")} the stack exported (layer base): what users pull is not what was verified`);
    expect(checked[3]?.failures[0]?.what).toBe("its tag 127.0.0.1:5000/g/tools-arm64:1.0-p0 is gone from the registry");
    expect(verifyExitCode(checked)).toBe(1);
  });

  it("a layer with no readable tag is refused: what users pull cannot be told", () => {
    const noRef = { base: { layer: "base", digestRef: ref("base", "a") } };
    const [refused] = withTagChecks([verdictOf("base", ref("base", "a"))], noRef, new Map());
    expect(refused?.admitted).toBe(false);
    expect(refused?.failures[0]?.what).toContain("no ref in its outputs");
    const untagged = { base: { layer: "base", ref: ref("base", "a"), digestRef: ref("base", "a") } };
    expect(withTagChecks([verdictOf("base", ref("base", "a"))], untagged, new Map())[0]?.failures[0]?.what).toContain("is not a tag reference");
  });
});

describe("what verify reads of the registry", () => {
  type Found = Awaited<ReturnType<RegistryClient["manifest"]>>;
  /** A registry answering manifests from a table after a delay per reference (so reads overlap and end out of order); a reference in `failing` throws. */
  const registryOf = (answers: Readonly<Record<string, Found>>, failing: ReadonlySet<string> = new Set()): Pick<RegistryClient, "manifest" | "registry"> & { reads: string[]; most: number } => {
    let running = 0;
    const client = {
      registry: "127.0.0.1:5000",
      reads: [] as string[],
      most: 0,
      async manifest(repository: string, reference: string): Promise<Found> {
        client.reads.push(`${repository}:${reference}`);
        running++;
        client.most = Math.max(client.most, running);
        await new Promise((resolve) => setTimeout(resolve, reference.endsWith("a".repeat(8)) ? 30 : 5));
        running--;
        if (failing.has(reference)) throw new Error("HTTP 500 from the registry");
        return answers[reference];
      },
    };
    return client;
  };
  const index = (...digests: string[]): Found => ({ digest: `sha256:${hex("a")}`, mediaType: "application/vnd.oci.image.index.v1+json", manifest: { schemaVersion: 2, manifests: digests.map((digest, at) => ({ digest, mediaType: "application/vnd.oci.image.manifest.v1+json", size: 1, platform: { os: "linux", architecture: at === 0 ? "amd64" : "arm64" } })) } } as Found);

  const image = (char: string): Found => ({ digest: `sha256:${hex(char)}`, mediaType: "application/vnd.oci.image.manifest.v1+json", manifest: {} } as Found);

  it("lists each index's platform images right after it, in the targets' order, reading them at once", async () => {
    const client = registryOf({ [`sha256:${hex("a")}`]: index(`sha256:${hex("c")}`, `sha256:${hex("d")}`), [`sha256:${hex("b")}`]: image("b"), [`sha256:${hex("c")}`]: image("c"), [`sha256:${hex("d")}`]: image("d") });
    const targets = [{ layer: "tools", digestRef: ref("tools", "a") }, { layer: "base", digestRef: ref("base", "b") }, { layer: "odd", digestRef: "not a reference" }];
    const read = await withIndexEntries(targets, client);
    expect(read.targets).toEqual([
      targets[0],
      { layer: "tools", platform: "linux/amd64", digestRef: ref("tools", "c") },
      { layer: "tools", platform: "linux/arm64", digestRef: ref("tools", "d") },
      targets[1],
      targets[2],
    ]);
    expect([...read.missing]).toEqual([]);
    expect(client.most).toBe(2);
    // The platform images the index names are read too, each once.
    expect(client.reads.filter((at) => at.endsWith(hex("c"))).length).toBe(1);
    expect(client.reads.filter((at) => at.endsWith(hex("d"))).length).toBe(1);
  });

  it("finds each digest the registry does not hold, a platform image an index names included, and refuses its verdict whatever cosign said", async () => {
    // tools' index names an arm64 image (d) that is gone; base (b) is gone; its tags may still be there, which is all cosign reads.
    const client = registryOf({ [`sha256:${hex("a")}`]: index(`sha256:${hex("c")}`, `sha256:${hex("d")}`), [`sha256:${hex("c")}`]: image("c") });
    const targets = [{ layer: "tools", digestRef: ref("tools", "a") }, { layer: "base", digestRef: ref("base", "b") }];
    const read = await withIndexEntries(targets, client);
    expect([...read.missing].sort()).toEqual([ref("base", "b"), ref("tools", "d")].sort());
    const admitted = (layer: string, digestRef: string): ImageVerdict => ({ layer, digestRef, admitted: true, signedBy: "keys/ci.pub", commit: "c".repeat(40), clean: true, reviewed: "yes", packages: 3, failures: [] });
    const verdicts = withMissingManifests(read.targets.map((target) => admitted(target.layer, target.digestRef)), read.missing);
    expect(verdicts.map((verdict) => [verdict.digestRef, verdict.admitted])).toEqual([[ref("tools", "a"), true], [ref("tools", "c"), true], [ref("tools", "d"), false], [ref("base", "b"), false]]);
    expect(verdicts.find((verdict) => verdict.digestRef === ref("base", "b"))?.failures.at(-1)?.what).toMatch(/^the registry holds no manifest for it \(HTTP 404\)/);
  });

  it("refuses an index that an index names (its own images are not looked into), whatever cosign said of it", async () => {
    // tools' index (a) names an image (c) and another index (e), which names d.
    const inner = { ...index(`sha256:${hex("d")}`), digest: `sha256:${hex("e")}` } as Found;
    const client = registryOf({ [`sha256:${hex("a")}`]: index(`sha256:${hex("c")}`, `sha256:${hex("e")}`), [`sha256:${hex("c")}`]: image("c"), [`sha256:${hex("e")}`]: inner, [`sha256:${hex("d")}`]: image("d") });
    const read = await withIndexEntries([{ layer: "tools", digestRef: ref("tools", "a") }], client);
    expect([...read.nested]).toEqual([ref("tools", "e")]);
    expect(read.targets.map((target) => target.digestRef)).toEqual([ref("tools", "a"), ref("tools", "c"), ref("tools", "e")]);
    const admitted = (layer: string, digestRef: string): ImageVerdict => ({ layer, digestRef, admitted: true, signedBy: "keys/ci.pub", commit: "c".repeat(40), clean: true, reviewed: "yes", packages: 3, failures: [] });
    const verdicts = withMissingManifests(read.targets.map((target) => admitted(target.layer, target.digestRef)), read.missing, read.nested);
    expect(verdicts.map((verdict) => verdict.admitted)).toEqual([true, true, false]);
    expect(verdicts[2]?.failures.at(-1)?.what).toMatch(/^it is an image index that another index names/);
  });

  it("reports each refusal at once, as verify does (review 122: each step of the composition is checked, not rebuilt by the test)", async () => {
    // tools' index (a) names an image (c) and an index (e); base (b) is gone; db's tag (f) moved.
    const inner = { ...index(`sha256:${hex("d")}`), digest: `sha256:${hex("e")}` } as Found;
    const client = registryOf({ [`sha256:${hex("a")}`]: index(`sha256:${hex("c")}`, `sha256:${hex("e")}`), [`sha256:${hex("c")}`]: image("c"), [`sha256:${hex("e")}`]: inner, [`sha256:${hex("f")}`]: image("f") });
    const targets = [{ layer: "tools", digestRef: ref("tools", "a") }, { layer: "base", digestRef: ref("base", "b") }, { layer: "db", digestRef: ref("db", "f") }];
    const read = await withIndexEntries(targets, client);
    const admitted = (layer: string, digestRef: string): ImageVerdict => ({ layer, digestRef, admitted: true, signedBy: "keys/ci.pub", commit: "c".repeat(40), clean: true, reviewed: "yes", packages: 3, failures: [] });
    const layers = {
      tools: { layer: "tools", ref: "127.0.0.1:5000/g/tools:1.0-p0", digestRef: ref("tools", "a") },
      base: { layer: "base", ref: "127.0.0.1:5000/g/base:1.0-p0", digestRef: ref("base", "b") },
      db: { layer: "db", ref: "127.0.0.1:5000/g/db:1.0-p0", digestRef: ref("db", "f") },
    };
    const held = new Map([["127.0.0.1:5000/g/tools:1.0-p0", `sha256:${hex("a")}`], ["127.0.0.1:5000/g/base:1.0-p0", `sha256:${hex("b")}`], ["127.0.0.1:5000/g/db:1.0-p0", `sha256:${hex("9")}`]]);
    const reported = reportedVerdicts(read.targets.map((target) => admitted(target.layer, target.digestRef)), read, layers, held);
    expect(reported.map((verdict) => [verdict.digestRef, verdict.admitted, verdict.failures.map((failure) => failure.what.slice(0, 40))])).toEqual([
      [ref("tools", "a"), true, []],
      [ref("tools", "c"), true, []],
      [ref("tools", "e"), false, ["it is an image index that another index "]],
      [ref("base", "b"), false, ["the registry holds no manifest for it (H"]],
      [ref("db", "f"), false, ["its tag 127.0.0.1:5000/g/db:1.0-p0 now h"]],
    ]);
  });

  it("reports an image whose parent is refused as refused with it; a parent refused only for what its tag or manifest shows now does not pass on", () => {
    const judged = (layer: string, char: string, admitted: boolean, parent?: string): ImageVerdict => ({ layer, digestRef: ref(layer, char), admitted, reviewed: "yes", ...(parent === undefined ? {} : { parentDigestRefs: [parent] }), failures: admitted ? [] : [{ what: "it has no signature by a trusted key (keys/ci.pub)", fix: "sign it" }] });
    const layers = {
      base: { layer: "base", ref: "127.0.0.1:5000/g/base:1.0-p0", digestRef: ref("base", "a") },
      tools: { layer: "tools", ref: "127.0.0.1:5000/g/tools:1.0-p0", digestRef: ref("tools", "b") },
    };
    const held = new Map([["127.0.0.1:5000/g/base:1.0-p0", `sha256:${hex("a")}`], ["127.0.0.1:5000/g/tools:1.0-p0", `sha256:${hex("b")}`]]);
    const none = { missing: new Set<string>(), nested: new Set<string>() };
    const refusedParent = reportedVerdicts([judged("base", "a", false), judged("tools", "b", true, ref("base", "a"))], none, layers, held);
    expect(refusedParent.map((verdict) => verdict.admitted)).toEqual([false, false]);
    expect(refusedParent[1]?.failures[0]?.what).toBe(`it was built on ${ref("base", "a")}, which is refused here: that image's bytes are in this one, so it is not trusted either`);
    // base is an index inside an index (read.nested): the images under it were never verified, and that passes on (review 124).
    const nested = reportedVerdicts([judged("base", "a", true), judged("tools", "b", true, ref("base", "a"))], { missing: new Set(), nested: new Set([ref("base", "a")]) }, layers, held);
    expect(nested.map((verdict) => verdict.admitted)).toEqual([false, false]);
    expect(nested[1]?.failures[0]?.what).toContain("which is refused here");
    // Its manifest gone while its signatures stay (read.missing): that says nothing of tools' bytes.
    expect(reportedVerdicts([judged("base", "a", true), judged("tools", "b", true, ref("base", "a"))], { missing: new Set([ref("base", "a")]), nested: new Set() }, layers, held).map((verdict) => verdict.admitted)).toEqual([false, true]);
    // base's tag moved since: base is refused, tools (its bytes verified with base's) is not.
    const moved = reportedVerdicts([judged("base", "a", true), judged("tools", "b", true, ref("base", "a"))], none, layers, new Map([...held, ["127.0.0.1:5000/g/base:1.0-p0", `sha256:${hex("9")}`]]));
    expect(moved.map((verdict) => verdict.admitted)).toEqual([false, true]);
  });

  it("refuses a platform image the stack's outputs name that is itself an index, without looking into it", async () => {
    // The outputs list tools' platforms: c (an image) and e (an index over d).
    const inner = { ...index(`sha256:${hex("d")}`), digest: `sha256:${hex("e")}` } as Found;
    const client = registryOf({ [`sha256:${hex("a")}`]: index(`sha256:${hex("c")}`, `sha256:${hex("e")}`), [`sha256:${hex("c")}`]: image("c"), [`sha256:${hex("e")}`]: inner, [`sha256:${hex("d")}`]: image("d") });
    const targets = [{ layer: "tools", digestRef: ref("tools", "a") }, { layer: "tools", platform: "linux/amd64", digestRef: ref("tools", "c") }, { layer: "tools", platform: "linux/arm64", digestRef: ref("tools", "e") }];
    const read = await withIndexEntries(targets, client);
    expect([...read.nested]).toEqual([ref("tools", "e")]);
    expect(read.targets.map((target) => target.digestRef)).not.toContain(ref("tools", "d"));
  });

  it("stops, naming both, when an output names another registry than the stack's strata:registry (cosign would verify at one, Strata read at the other)", async () => {
    const client = registryOf({ [`sha256:${hex("b")}`]: image("b") });
    await expect(withIndexEntries([{ layer: "base", digestRef: `old.example:5000/g/base@sha256:${hex("b")}` }], client)).rejects.toThrow(/^old\.example:5000\/g\/base@sha256:b{64} is at registry old\.example:5000, but the stack's strata:registry is 127\.0\.0\.1:5000, .*fix: run scripts\/strata up on the stack/);
    await expect(heldDigests({ base: { layer: "base", ref: "old.example:5000/g/base:1.0" } }, client)).rejects.toThrow(/is at registry old\.example:5000, but the stack's strata:registry is 127\.0\.0\.1:5000/);
    expect(client.reads).toEqual([]);
  });

  it("stops with what it cannot tell when the registry fails, and starts no more reads", async () => {
    const targets = Array.from({ length: 40 }, (_, at) => ({ layer: `l${at}`, digestRef: ref(`l${at}`, at === 0 ? "e" : "b") }));
    const client = registryOf({}, new Set([`sha256:${hex("e")}`]));
    await expect(withIndexEntries(targets, client)).rejects.toThrow(/^cannot tell what 127\.0\.0\.1:5000\/g\/l0@sha256:e{64} \(layer l0\) is: registry 127\.0\.0\.1:5000 answered HTTP 500 from the registry; fix: /);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.reads.length).toBeLessThan(40);
  });

  it("reads what each exported tag holds: a digest, or undefined for a tag that is gone; a failed read stops it", async () => {
    const tag = (image: string): string => `127.0.0.1:5000/g/${image}:1.0`;
    const client = registryOf({ "1.0": { digest: `sha256:${hex("b")}`, mediaType: "application/vnd.oci.image.manifest.v1+json", manifest: {} } });
    const held = await heldDigests({ base: { layer: "base", ref: tag("base"), digestRef: ref("base", "b") }, gone: { layer: "gone", ref: "127.0.0.1:5000/g/gone:2.0", digestRef: ref("gone", "c") }, bare: { layer: "bare", digestRef: ref("bare", "d") } }, client);
    expect([...held]).toEqual([[tag("base"), `sha256:${hex("b")}`], ["127.0.0.1:5000/g/gone:2.0", undefined]]);
    await expect(heldDigests({ base: { layer: "base", ref: tag("base") } }, registryOf({}, new Set(["1.0"])))).rejects.toThrow(/^cannot tell what 127\.0\.0\.1:5000\/g\/base:1\.0 holds now: registry 127\.0\.0\.1:5000 answered HTTP 500 from the registry/);
  });
});
