/**
 * A CI run on a signing channel (issue 29, item 6), with the real engine, registry and pinned
 * cosign: the run signs with the key its stack has — the channel's change key (its
 * strata:changeSigningKey), never the channel's own key, which a trust policy may list —
 * its built layer and every copy under the copy's own annotated digest, so plain `cosign verify`
 * and `verify-attestation` accept each ref of the change's image set; `strata ci-clean` deletes
 * the change's tags with their `.sig`/`.att` tags and leaves every release ref verifying; and no
 * line of the private key nor its passphrase is in any log, output, state export or CLI output.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalWorkspace } from "@pulumi/pulumi/automation/index.js";
import { parse } from "yaml";
import { attestationTag, signatureTag } from "../../src/core/cosign-format.js";
import { BUILD_RESOURCE_TYPES } from "../../src/core/image-types.js";
import { BUILD_ARGS } from "../../src/core/plan.js";
import { Cosign, type SigningKey } from "../../src/engine/cosign.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, registry, registryAddress, registryContents, runStrata, upWithSummary } from "./harness.js";
import { cosignBinary } from "./cosign-cli.js";

const PASSPHRASE = "ci-signing-passphrase-93c4a7";
const CHANGE_PASSPHRASE = "ci-change-passphrase-5e01d8";
const CHANGE = "5151";
const ciEnv = { GERRIT_CHANGE_NUMBER: CHANGE, GERRIT_PATCHSET_NUMBER: "1" };
const LAYERS = ["app", "app-base", "base", "db", "libs", "tools"];

interface SignedLayer {
  readonly layer: string;
  readonly tag: string;
  readonly digestRef: string;
  readonly parent: string | null;
  readonly signature?: string;
  readonly provenance?: string;
}

interface ProvenanceStatement {
  readonly subject: readonly { readonly digest: { readonly sha256: string } }[];
  readonly predicate: {
    readonly buildDefinition: {
      readonly externalParameters: { readonly layer: string; readonly parent: string | null; readonly source: { readonly commit: string; readonly tree: string } };
      readonly internalParameters: { readonly copiedFrom?: string };
      readonly resolvedDependencies: readonly { readonly uri: string; readonly digest: Record<string, string>; readonly name?: string }[];
    };
  };
}

const digestOfRef = (digestRef: string): string => digestRef.slice(digestRef.indexOf("@") + 1);
/** `group/image` of `registry/group/image@sha256:…`. */
const repositoryOf = (digestRef: string): string => digestRef.slice(registryAddress.length + 1, digestRef.indexOf("@"));

/** Every file under a folder (backend, logs, reports, image sets). */
function filesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    const stat = statSync(full);
    if (stat.isDirectory()) files.push(...filesUnder(full));
    else if (stat.isFile() && stat.size < 64 << 20) files.push(full);
  }
  return files;
}

describe("a CI run on a signing channel, and its clean-up", () => {
  let world: E2eWorld;
  let dev: E2eStack;
  let cosign: string;
  let keysDir: string;
  let key: SigningKey;
  let publicKeyFile: string;
  let changeKey: SigningKey;
  let changePublicKeyFile: string;
  let release: Record<string, SignedLayer>;
  let ci: Record<string, SignedLayer>;
  /** Everything the runs printed, and the stacks' outputs and state exports, for the key check. */
  const said: string[] = [];

  const git = (...args: string[]): string => catalogGit(world, ...args);
  /** Plain cosign, as a user runs it by hand: no Strata code in between. */
  const cosignCli = (args: readonly string[]): { code: number; out: string } => {
    const result = spawnSync(cosign, args, { encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" }, timeout: 120_000 });
    return { code: result.status ?? -1, out: `${result.stdout}${result.stderr}` };
  };
  const verifyFlags = (keyFile: string = publicKeyFile): string[] => ["--key", keyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry"];
  /** The ref's signature and both attestations verify with the key; the provenance statement cosign verified. */
  const verifyAll = (digestRef: string, keyFile: string = publicKeyFile): ProvenanceStatement => {
    const verifyFlags = (): string[] => ["--key", keyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry"];
    const verify = cosignCli(["verify", ...verifyFlags(), digestRef]);
    expect(verify.code, `${digestRef}: ${verify.out}`).toBe(0);
    const sbom = cosignCli(["verify-attestation", ...verifyFlags(), "--type", "spdxjson", digestRef]);
    expect(sbom.code, `${digestRef} spdxjson: ${sbom.out}`).toBe(0);
    const provenance = cosignCli(["verify-attestation", ...verifyFlags(), "--type", "slsaprovenance1", digestRef]);
    expect(provenance.code, `${digestRef} slsaprovenance1: ${provenance.out}`).toBe(0);
    const envelope = JSON.parse(provenance.out.split("\n").find((line) => line.startsWith("{")) ?? "{}") as { payload?: string };
    return JSON.parse(Buffer.from(envelope.payload ?? "", "base64").toString("utf8")) as ProvenanceStatement;
  };
  const layersOf = async (stackName: string): Promise<Record<string, SignedLayer>> => {
    const stack = await LocalWorkspace.selectStack({ stackName, workDir: world.projectDir }, { envVars: { ...world.env } });
    const outputs = await stack.outputs();
    said.push(JSON.stringify(outputs));
    return (outputs.layers?.value ?? {}) as Record<string, SignedLayer>;
  };
  /** The state as the backend keeps it (`pulumi stack export`, secrets encrypted). */
  const exportState = (stackName: string): string => execFileSync("pulumi", ["stack", "export", "--stack", stackName, "--non-interactive"], { cwd: world.projectDir, encoding: "utf8", env: { ...process.env, ...world.env } });

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("ci-signing");
    // Provenance names the catalog's commit: the catalog is a git checkout of its own.
    commitCatalog(world);
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-ci-signing-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    key = pair.key;
    publicKeyFile = pair.publicKeyFile;
    // The channel signs its releases with its key; a change's run signs with the change key alone.
    const changeDir = path.join(keysDir, "change");
    mkdirSync(changeDir);
    const changePair = await new Cosign({ binary: cosign }).generateKeyPair(changeDir, CHANGE_PASSPHRASE);
    changeKey = changePair.key;
    changePublicKeyFile = changePair.publicKeyFile;
    dev = await world.stack("dev", {}, { secrets: { signingKey: key.privateKeyPem, signingKeyPassphrase: PASSPHRASE, changeSigningKey: changeKey.privateKeyPem, changeSigningKeyPassphrase: CHANGE_PASSPHRASE } });
    const run = await upWithSummary(world, "dev", "dev");
    said.push(run.out);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("signed and attested (SBOM, provenance): 6 images");
    release = await layersOf("dev");
    expect(Object.keys(release).sort()).toEqual(LAYERS);
  });
  afterAll(async () => {
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("signs and attests the change's built layer and each copy under the copy's own digest; plain cosign verifies them all", async () => {
    appendFileSync(path.join(world.catalogDir, "app/app.txt"), `change ${CHANGE}\n`);
    git("commit", "-q", "-am", `change ${CHANGE}`);
    const run = await upWithSummary(world, "dev", "ci", ciEnv);
    said.push(run.out);
    expect(run.code, run.out).toBe(0);
    expect(run.results).toEqual({ base: "copied", tools: "copied", db: "copied", libs: "copied", "app-base": "copied", app: "built" });
    expect(run.out).toContain("signed and attested (SBOM, provenance): 6 images");
    ci = await layersOf(`dev-ci-${CHANGE}`);
    expect(Object.keys(ci).sort()).toEqual(LAYERS);
    // The change's stack file holds the channel's change key, and not the channel's key.
    const secureOf = (file: string, field: string): string | undefined => (parse(readFileSync(path.join(world.projectDir, file), "utf8")) as { config: Record<string, { secure?: string } | undefined> }).config[field]?.secure;
    expect(secureOf(`Pulumi.dev-ci-${CHANGE}.yaml`, "strata:changeSigningKey")).toBe(secureOf("Pulumi.dev.yaml", "strata:changeSigningKey"));
    expect(secureOf(`Pulumi.dev-ci-${CHANGE}.yaml`, "strata:signingKey")).toBeUndefined();
    expect(readFileSync(path.join(world.projectDir, `Pulumi.dev-ci-${CHANGE}.yaml`), "utf8")).not.toContain(secureOf("Pulumi.dev.yaml", "strata:signingKey") ?? "(none)");
    const commit = git("rev-parse", "HEAD");
    for (const layer of LAYERS) {
      const copy = ci[layer] as SignedLayer;
      const released = release[layer] as SignedLayer;
      expect(copy.tag).toBe(`${released.tag}-${CHANGE}_1`);
      // Each CI ref has a digest of its own (the copies' annotation), so ci-clean can delete it and its signatures alone.
      expect(digestOfRef(copy.digestRef)).not.toBe(digestOfRef(released.digestRef));
      expect((await registry.manifest(repositoryOf(copy.digestRef), copy.tag))?.digest).toBe(digestOfRef(copy.digestRef));
      expect(copy.signature).toBe(`${registryAddress}/${repositoryOf(copy.digestRef)}:${signatureTag(digestOfRef(copy.digestRef))}`);
      const statement = verifyAll(copy.digestRef, changePublicKeyFile);
      // The change's run never held the channel's key: nothing of it verifies with that key.
      expect(cosignCli(["verify", ...verifyFlags(publicKeyFile), copy.digestRef]).code, `${layer}: signed with the channel's key`).not.toBe(0);
      expect(statement.subject.map((subject) => `sha256:${subject.digest.sha256}`)).toEqual([digestOfRef(copy.digestRef)]);
      const external = statement.predicate.buildDefinition.externalParameters;
      expect(external.layer).toBe(layer);
      expect(external.source).toEqual({ repository: expect.any(String), commit, tree: "clean" });
      // The parent as the image was made on it: every parent here is a copy, and a copy's children
      // build on the release image the copy is made from, not on the copy's own annotated digest.
      expect(external.parent).toBe(copy.parent === null ? null : (release[copy.parent] as SignedLayer).digestRef);
      const { internalParameters, resolvedDependencies } = statement.predicate.buildDefinition;
      const copiedFrom = resolvedDependencies.filter((dependency) => dependency.name === "copiedFrom");
      if (run.results[layer] === "copied") {
        // A copy never reads as a build of this run: it names the release image it was copied from.
        expect(internalParameters.copiedFrom).toBe(released.digestRef);
        expect(copiedFrom).toEqual([{ uri: `pkg:docker/${registryAddress}/${repositoryOf(released.digestRef)}`, digest: { sha256: digestOfRef(released.digestRef).slice("sha256:".length) }, name: "copiedFrom" }]);
      } else {
        expect(internalParameters.copiedFrom).toBeUndefined();
        expect(copiedFrom).toEqual([]);
      }
    }
    // The built layer's provenance parent is the image its build really ran on: the BASE_IMAGE
    // build argument its build resource has in the CI stack's state.
    const appParent = (ci.app as SignedLayer).parent as string;
    const builtOn = baseImageOf(exportState(`dev-ci-${CHANGE}`), "app");
    expect(builtOn).toBe((release[appParent] as SignedLayer).digestRef);
    expect(builtOn).not.toBe((ci[appParent] as SignedLayer).digestRef);
    // The release refs still verify, and the CI run wrote no signature of its own over them.
    for (const layer of LAYERS) {
      const released = release[layer] as SignedLayer;
      verifyAll(released.digestRef);
      expect((await registry.manifest(repositoryOf(released.digestRef), signatureTag(digestOfRef(released.digestRef))))?.manifest.layers?.length).toBe(1);
    }
  });

  it("signs nothing again on a rerun of the CI run, and keeps every image's attestation inputs (copiedFrom, parent) the same", async () => {
    const attestationInputs = (): Record<string, unknown> => {
      const sets = (JSON.parse(exportState(`dev-ci-${CHANGE}`)) as { deployment: { resources?: { type: string; inputs?: Record<string, unknown> }[] } }).deployment.resources
        ?.filter((resource) => resource.type === "strata:index:ImageAttestationsSet") ?? [];
      expect(sets.length).toBeGreaterThan(0);
      const images = Object.assign({}, ...sets.map((set) => set.inputs?.images ?? {})) as Record<string, unknown>;
      // No image in two sets (it would be signed by each, and merging would hide it).
      expect(sets.reduce((count, set) => count + Object.keys(set.inputs?.images ?? {}).length, 0)).toBe(Object.keys(images).length);
      return images;
    };
    const before = attestationInputs();
    expect(Object.keys(before).sort()).toEqual([...LAYERS].sort());
    const rerun = await upWithSummary(world, "dev", "ci-rerun", ciEnv);
    said.push(rerun.out);
    expect(rerun.code, rerun.out).toBe(0);
    // A changed input has the engine write the state on a run that signs nothing.
    expect(attestationInputs()).toEqual(before);
    expect(await layersOf(`dev-ci-${CHANGE}`)).toEqual(ci);
    for (const layer of LAYERS) {
      const digestRef = (ci[layer] as SignedLayer).digestRef;
      expect((await registry.manifest(repositoryOf(digestRef), signatureTag(digestOfRef(digestRef))))?.manifest.layers?.length, `${layer}: one signature`).toBe(1);
    }
  });

  it("keeps the key and its passphrase out of both stacks' state, outputs and run logs", () => {
    const exports = [exportState("dev"), exportState(`dev-ci-${CHANGE}`)];
    for (const exported of exports) {
      // The key is in each state, encrypted: the ImageAttestationsSet's inputs hold it as a secret.
      expect(exported).toMatch(/"signingKey": \{\s*"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",\s*"ciphertext"/);
    }
    said.push(...exports);
    // The runs' per-layer logs and reports (.strata/logs/<stack>/<run>/), and every other file the runs left in the world: backend, stack files, image sets.
    const logs = filesUnder(path.join(world.projectDir, ".strata", "logs", `dev-ci-${CHANGE}`));
    expect(logs.filter((file) => file.endsWith(".log")).length, logs.join("\n")).toBeGreaterThan(0);
    const files = filesUnder(world.root).filter((file) => !file.endsWith(".tar"));
    expect(files).toEqual(expect.arrayContaining(logs));
    expectNoKeyMaterial([...said, ...files.map((file) => readFileSync(file, "utf8"))]);
  });

  it("ci-clean deletes the change's tags with their .sig/.att tags, and those of an image a later run wrote its tag over, and every release ref still verifies", async () => {
    const ciRefs = LAYERS.map((layer) => ci[layer] as SignedLayer);
    // A later run of the same CI tag wrote other bytes over the first layer's (a recheck whose build
    // differs): the image it held keeps its .sig/.att, which no tag of the change reaches any more.
    const [overwritten, ...stillTagged] = ciRefs as [SignedLayer, ...SignedLayer[]];
    const overwrittenRepository = repositoryOf(overwritten.digestRef);
    const overwrittenDigest = digestOfRef(overwritten.digestRef);
    const held = await registry.rawManifest(overwrittenRepository, overwrittenDigest);
    const rewritten = JSON.parse(held.bytes.toString("utf8")) as { annotations?: Record<string, string> };
    const rewrittenDigest = await registry.putManifest(overwrittenRepository, overwritten.tag, Buffer.from(JSON.stringify({ ...rewritten, annotations: { ...rewritten.annotations, "org.strata.e2e": "a recheck's other bytes" } })), held.mediaType);
    expect(rewrittenDigest).not.toBe(overwrittenDigest);
    const dry = await runStrata(world, ["ci-clean", "--stack", "dev", "--change", CHANGE, "--dry-run", "--json"]);
    said.push(dry.out);
    expect(dry.code, dry.out).toBe(0);
    const planned = JSON.parse(dry.out) as { removed: { repository: string; tag: string; digest: string }[]; kept: unknown[]; orphansRemoved: { repository: string; subject: string; signatures: { tag: string }[] }[]; orphansKept: unknown[] };
    const expected = [`${overwrittenRepository}:${overwritten.tag}`, ...stillTagged.flatMap((ref) => {
      const repository = repositoryOf(ref.digestRef);
      const digest = digestOfRef(ref.digestRef);
      return [`${repository}:${ref.tag}`, `${repository}:${signatureTag(digest)}`, `${repository}:${attestationTag(digest)}`];
    })];
    expect(planned.removed.map((entry) => `${entry.repository}:${entry.tag}`).sort()).toEqual(expected.sort());
    expect(planned.kept).toEqual([]);
    // The image written over: found by its signatures, the change's by its provenance (stack dev-ci-<change>).
    expect(planned.orphansRemoved.map((orphan) => [orphan.repository, orphan.subject, orphan.signatures.map((entry) => entry.tag).sort()])).toEqual([[overwrittenRepository, overwrittenDigest, [attestationTag(overwrittenDigest), signatureTag(overwrittenDigest)].sort()]]);
    expect(planned.orphansKept).toEqual([]);
    expected.push(`${overwrittenRepository}:${signatureTag(overwrittenDigest)}`, `${overwrittenRepository}:${attestationTag(overwrittenDigest)}`);

    const clean = await runStrata(world, ["ci-clean", "--stack", "dev", "--change", CHANGE]);
    said.push(clean.out);
    expect(clean.code, clean.out).toBe(0);
    expect(clean.out).toMatch(new RegExp(`${expected.length} tag\\(s\\) deleted; stack dev-ci-${CHANGE}: removed`));
    for (const ref of ciRefs) {
      const repository = repositoryOf(ref.digestRef);
      const digest = digestOfRef(ref.digestRef);
      for (const tag of [ref.tag, signatureTag(digest), attestationTag(digest)]) expect(await registry.manifest(repository, tag), `${repository}:${tag}`).toBeUndefined();
      expect(cosignCli(["verify", ...verifyFlags(changePublicKeyFile), ref.digestRef]).code).not.toBe(0);
    }
    // The image written over is gone too, and the bytes written over it.
    for (const digest of [overwrittenDigest, rewrittenDigest]) expect(await registry.manifest(overwrittenRepository, digest), digest).toBeUndefined();
    // What is left is the channel's: each repository its release tag and that digest's .sig and .att.
    const contents = await registryContents(dev.group);
    expect(Object.values(contents).flat().filter((tag) => tag.includes(`-${CHANGE}`))).toEqual([]);
    for (const layer of LAYERS) {
      const released = release[layer] as SignedLayer;
      const digest = digestOfRef(released.digestRef);
      expect(contents[repositoryOf(released.digestRef).slice(dev.group.length + 1)]?.sort()).toEqual([released.tag, signatureTag(digest), attestationTag(digest)].sort());
      expect((await registry.manifest(repositoryOf(released.digestRef), released.tag))?.digest).toBe(digest);
      verifyAll(released.digestRef);
    }
    expectNoKeyMaterial([dry.out, clean.out]);
  });

  it("a stack whose own file names a change, holding only the channel's key, does not sign with it: a change's run reads the change key alone", async () => {
    const selfci = await world.stack("selfci", { channel: "selfci", change: "6262" }, { secrets: { signingKey: key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
    const run = await upWithSummary(world, "selfci", "selfci");
    said.push(run.out);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("not signed (no strata:changeSigningKey: a change's run never holds the channel's strata:signingKey)");
    const tags = Object.values(await registryContents(selfci.group)).flat();
    expect(tags.length).toBeGreaterThan(0);
    expect(tags.filter((tag) => tag.endsWith(".sig") || tag.endsWith(".att"))).toEqual([]);
    expectNoKeyMaterial([run.out]);
  });

  /** The BASE_IMAGE build argument of a layer's build resource (docker.Image or LayerImage) in a state export. */
  function baseImageOf(exported: string, layer: string): string | undefined {
    const resources = (JSON.parse(exported) as { deployment: { resources?: { urn: string; type: string; inputs?: Record<string, unknown> }[] } }).deployment.resources ?? [];
    const built = resources.filter((resource) => Object.values(BUILD_RESOURCE_TYPES).includes(resource.type) && resource.urn.endsWith(`::${layer}`));
    expect(built, `${layer}'s build resource`).toHaveLength(1);
    const inputs = built[0]?.inputs ?? {};
    const args = (inputs.buildArgs ?? (inputs.build as { args?: unknown } | undefined)?.args ?? {}) as Record<string, unknown>;
    const base = args[BUILD_ARGS.baseImage];
    return typeof base === "string" ? base : undefined;
  }

  /** No line of either private key PEM (its base64 body) and neither passphrase, in any of `texts`. */
  function expectNoKeyMaterial(texts: readonly string[]): void {
    const keyLines = [key, changeKey].flatMap((pair) => pair.privateKeyPem.split("\n").map((line) => line.trim()).filter((line) => line.length >= 16 && !line.startsWith("-----")));
    expect(keyLines.length).toBeGreaterThan(1);
    expect(texts.length).toBeGreaterThan(0);
    for (const text of texts) {
      expect(text.includes(PASSPHRASE) || text.includes(CHANGE_PASSPHRASE), "a passphrase is in a log, an output or the state").toBe(false);
      for (const line of keyLines) expect(text.includes(line), "a line of the private key is in a log, an output or the state").toBe(false);
    }
  }
});
