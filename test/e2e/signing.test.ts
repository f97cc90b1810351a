/**
 * Signed, attested layers (issue 29, items 3–4) through `strata up`, with the real engine and the
 * real registry, signed by Strata in-process (no cosign binary at hand while it signs) and checked
 * with the real pinned cosign: every layer's digest verifies with plain `cosign verify` and
 * `cosign verify-attestation`, the provenance names the catalog's commit and the parent's digest, a
 * rerun signs nothing again, a changed leaf is signed anew alone, a stack without a key publishes
 * unsigned and says so, and no key material reaches logs, outputs or the state.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unlockCosignKey } from "../../src/core/cosign-format.js";
import { Cosign, type SigningKey } from "../../src/engine/cosign.js";
import { LocalWorkspace } from "@pulumi/pulumi/automation/index.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, makeMultiPlatform, registry, registryAddress, registryContents, runStrata, type UpSummary, upWithSummary } from "./harness.js";
import { cosignBinary, cosignCli } from "./cosign-cli.js";

const PASSPHRASE = "signing-passphrase-5d81e0";
/** A cosign that is not there: what a run that signs is given, to show that signing never runs cosign. */
const NO_COSIGN = "/nonexistent/strata-e2e/cosign";

interface SignedLayerOutput {
  readonly layer: string;
  readonly digestRef: string;
  readonly parent: string | null;
  readonly signature?: string;
  readonly sbom?: string;
  readonly provenance?: string;
  readonly packages?: number;
}


const digestHex = (digestRef: string): string => digestRef.slice(digestRef.indexOf("@sha256:") + "@sha256:".length);
const repositoryOf = (digestRef: string): string => digestRef.slice(registryAddress.length + 1, digestRef.indexOf("@"));

/** The attestation sets' images as their inputs in the state name them, every set's together. */
function attestationImages(exported: { deployment: { resources?: { type: string; inputs?: Record<string, unknown> }[] } }): Record<string, unknown> {
  const sets = (exported.deployment.resources ?? []).filter((resource) => resource.type === "strata:index:ImageAttestationsSet");
  expect(sets.length).toBeGreaterThan(0);
  const images = Object.assign({}, ...sets.map((set) => set.inputs?.images ?? {})) as Record<string, unknown>;
  // No image in two sets (it would be signed by each, and merging would hide it).
  expect(sets.reduce((count, set) => count + Object.keys(set.inputs?.images ?? {}).length, 0)).toBe(Object.keys(images).length);
  return images;
}

/** What the attestation sets' state says was signed, by image name, every set's together (their outputs). */
function attestedEntries(exported: { deployment: { resources?: { type: string; outputs?: Record<string, unknown> }[] } }): Record<string, unknown> {
  const sets = (exported.deployment.resources ?? []).filter((resource) => resource.type === "strata:index:ImageAttestationsSet");
  return Object.assign({}, ...sets.map((set) => set.outputs?.attested ?? {})) as Record<string, unknown>;
}

/** The digest each of a cosign tag's manifests has now (what a write would change). */
async function tagDigest(digestRef: string, suffix: "sig" | "att"): Promise<string | undefined> {
  return (await registry.manifest(repositoryOf(digestRef), `sha256-${digestHex(digestRef)}.${suffix}`))?.digest;
}

/** The layers of a cosign tag's manifest (one per signature or attestation). */
async function tagLayers(digestRef: string, suffix: "sig" | "att"): Promise<number> {
  const found = await registry.manifest(repositoryOf(digestRef), `sha256-${digestHex(digestRef)}.${suffix}`);
  if (found === undefined) throw new Error(`${digestRef} has no .${suffix} tag`);
  return found.manifest.layers?.length ?? 0;
}

/** Every file under a folder, as text (state backend, logs, stack files). */
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

describe("signed and attested layers", () => {
  let world: E2eWorld;
  let keysDir: string;
  let cosign: string;
  let key: SigningKey;
  let publicKeyFile: string;
  let dev: E2eStack;
  const outputsLog: string[] = [];

  const git = (...args: string[]): string => catalogGit(world, ...args);

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("signing");
    // Provenance names the catalog's commit: the catalog is a git checkout of its own here.
    commitCatalog(world);
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-signing-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    key = pair.key;
    publicKeyFile = pair.publicKeyFile;
    dev = await world.stack("dev", {}, { secrets: { signingKey: key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
  });
  afterAll(async () => {
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("signs every layer's digest and attests its SBOM and provenance, so plain cosign verifies them", async () => {
    const preview = await dev.stack.preview();
    expect(preview.stdout).toContain("strata:index:ImageAttestationsSet");
    // Signing needs no cosign binary (the provider signs in-process, registry/signatures.ts): a
    // cosign that cannot run is handed to the run, and only plain cosign below, the verifier, runs.
    const first = await upWithSummary(world, "dev", "first", { STRATA_COSIGN: NO_COSIGN });
    outputsLog.push(first.out);
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain("signed and attested (SBOM, provenance): 6 images");
    // The summary's packages column: each image's count and what its layer added over its parent (busybox: none).
    expect(first.out).toMatch(/\bpackages \(added\)\s*$/m);
    for (const name of ["base", "tools", "libs", "db", "app-base", "app"]) expect(first.out).toMatch(new RegExp(`^${name}\\s.*\\s0 \\(\\+0\\)\\s*$`, "m"));
    const layers = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    outputsLog.push(JSON.stringify(await dev.stack.outputs()));
    expect(Object.keys(layers).sort()).toEqual(["app", "app-base", "base", "db", "libs", "tools"]);
    const commit = git("rev-parse", "HEAD");
    for (const layer of Object.values(layers)) {
      const repository = layer.digestRef.slice(0, layer.digestRef.indexOf("@"));
      expect(layer.signature).toBe(`${repository}:sha256-${digestHex(layer.digestRef)}.sig`);
      expect(layer.sbom).toBe(`${repository}:sha256-${digestHex(layer.digestRef)}.att`);
      expect(layer.provenance).toBe(layer.sbom);
      expect(layer.packages).toBe(0); // busybox: no dpkg database, no Python
      const verify = cosignCli(cosign, ["verify", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", layer.digestRef]);
      expect(verify.code, verify.out).toBe(0);
      const sbom = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "spdxjson", layer.digestRef]);
      expect(sbom.code, sbom.out).toBe(0);
      const provenance = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "slsaprovenance1", layer.digestRef]);
      expect(provenance.code, provenance.out).toBe(0);
      const envelope = JSON.parse(provenance.out.split("\n").find((line) => line.startsWith("{")) ?? "{}") as { payload?: string };
      const statement = JSON.parse(Buffer.from(envelope.payload ?? "", "base64").toString("utf8")) as { subject: { digest: { sha256: string } }[]; predicate: { buildDefinition: { externalParameters: { source: { commit: string; tree: string }; parent: string | null; layer: string }; internalParameters: { engine: { network?: string } } } } };
      expect(statement.subject[0]?.digest.sha256).toBe(digestHex(layer.digestRef));
      // The network its build steps had (strata:buildNetwork; this stack leaves the engine's default).
      expect(statement.predicate.buildDefinition.internalParameters.engine.network).toBe("default");
      const external = statement.predicate.buildDefinition.externalParameters;
      expect(external.source.commit).toBe(commit);
      expect(external.source.tree).toBe("clean");
      expect(external.layer).toBe(layer.layer);
      expect(external.parent).toBe(layer.parent === null ? null : layers[layer.parent]?.digestRef);
      expect(await tagLayers(layer.digestRef, "sig")).toBe(1);
      expect(await tagLayers(layer.digestRef, "att")).toBe(2);
    }
    // Another key does not verify: the signature is the key's, not merely present.
    const otherDir = mkdtempSync(path.join(tmpdir(), "strata-signing-other-"));
    try {
      const other = await new Cosign({ binary: cosign }).generateKeyPair(otherDir, "other-passphrase");
      const wrong = cosignCli(cosign, ["verify", "--key", other.publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", (layers.app as SignedLayerOutput).digestRef]);
      expect(wrong.code, wrong.out).not.toBe(0);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it("signs nothing again on a second up: no change, one signature per digest", async () => {
    const before = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    const attestationInputs = async (): Promise<Record<string, unknown>> => attestationImages(await dev.stack.exportStack());
    const inputsBefore = await attestationInputs();
    const preview = await dev.stack.preview();
    expect(preview.changeSummary).toEqual({ same: expect.any(Number) });
    const second = await upWithSummary(world, "dev", "second");
    outputsLog.push(second.out);
    expect(second.code, second.out).toBe(0);
    expect(new Set(Object.values(second.results))).toEqual(new Set(["unchanged"]));
    const after = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    expect(after).toEqual(before);
    // Nor do the set's inputs change (the run id is no input): a changed input has the engine write the whole state for nothing.
    expect(Object.keys(inputsBefore).length).toBe(6);
    expect(await attestationInputs()).toEqual(inputsBefore);
    for (const layer of Object.values(after)) {
      expect(await tagLayers(layer.digestRef, "sig")).toBe(1);
      expect(await tagLayers(layer.digestRef, "att")).toBe(2);
    }
  });

  it("writes nothing when its sets are made anew over images an earlier run signed (a state from before the sets), and says they were signed before", async () => {
    const layers = Object.values((await dev.outputs()) as unknown as Record<string, SignedLayerOutput>);
    const tagsBefore = await Promise.all(layers.flatMap((layer) => [tagDigest(layer.digestRef, "sig"), tagDigest(layer.digestRef, "att")]));
    expect(tagsBefore.every((digest) => digest !== undefined)).toBe(true);
    // The state forgets its sets, as a state written before them has none: the next run creates them.
    const pulumiCli = (...args: string[]): string => execFileSync("pulumi", [...args, "--stack", "dev", "--non-interactive"], { cwd: world.projectDir, encoding: "utf8", env: { ...process.env, ...world.env } });
    const setUrns = (JSON.parse(pulumiCli("stack", "export")) as { deployment: { resources: { urn: string; type: string }[] } }).deployment.resources
      .filter((resource) => resource.type === "strata:index:ImageAttestationsSet").map((resource) => resource.urn);
    expect(setUrns.length).toBeGreaterThan(0);
    for (const urn of setUrns) pulumiCli("state", "delete", urn, "--yes");
    const anew = await upWithSummary(world, "dev", "sets-anew", { STRATA_COSIGN: NO_COSIGN });
    outputsLog.push(anew.out);
    expect(anew.code, anew.out).toBe(0);
    expect(anew.out).toContain("signed and attested (SBOM, provenance): 6 images");
    expect(anew.summary.layers.map((layer) => layer.signed)).toEqual(layers.map(() => "signed before"));
    // The same manifests in every .sig and .att tag: nothing appended, nothing rewritten.
    expect(await Promise.all(layers.flatMap((layer) => [tagDigest(layer.digestRef, "sig"), tagDigest(layer.digestRef, "att")]))).toEqual(tagsBefore);
    // The state names the attestations the registry holds (the earlier run's), not this run's would-be ones.
    const attested = Object.values(attestedEntries(await dev.stack.exportStack())) as { digestRef: string; sbomAttestationDigest?: string; provenanceAttestationDigest?: string }[];
    expect(attested).toHaveLength(layers.length);
    for (const entry of attested) {
      const held = (await registry.manifest(repositoryOf(entry.digestRef), `sha256-${digestHex(entry.digestRef)}.att`))?.manifest.layers?.map((layer) => layer.digest);
      expect([entry.sbomAttestationDigest, entry.provenanceAttestationDigest]).toEqual(held);
    }
  });

  it("signs a changed leaf anew, and only that leaf", async () => {
    const before = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    const entriesBefore = attestedEntries(await dev.stack.exportStack());
    const commitBefore = git("rev-parse", "HEAD");
    writeFileSync(path.join(world.catalogDir, "app/app.txt"), `${readFileSync(path.join(world.catalogDir, "app/app.txt"), "utf8")}changed\n`);
    git("commit", "-q", "-am", "app changed");
    const third = await upWithSummary(world, "dev", "third", { STRATA_COSIGN: NO_COSIGN });
    outputsLog.push(third.out);
    expect(third.code, third.out).toBe(0);
    const after = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    const resigned = Object.keys(after).filter((layer) => after[layer]?.signature !== before[layer]?.signature).sort();
    expect(resigned).toEqual(["app"]);
    // Every other image's entry in the sets' state is as it was (the update kept it, never signing
    // it again with this run's id), app's own set included.
    const entriesAfter = attestedEntries(await dev.stack.exportStack());
    expect(Object.keys(entriesAfter).sort()).toEqual(Object.keys(entriesBefore).sort());
    for (const name of Object.keys(entriesBefore).filter((image) => image !== "app")) expect(entriesAfter[name], name).toEqual(entriesBefore[name]);
    expect(entriesAfter.app).not.toEqual(entriesBefore.app);
    const app = after.app as SignedLayerOutput;
    expect(cosignCli(cosign, ["verify", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", app.digestRef]).code).toBe(0);
    expect(await tagLayers(app.digestRef, "sig")).toBe(1);
    // The old digest keeps its signature: it is still what the old tag's users pulled.
    expect(await tagLayers((before.app as SignedLayerOutput).digestRef, "sig")).toBe(1);
    const provenance = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "slsaprovenance1", app.digestRef]);
    expect(provenance.code, provenance.out).toBe(0);
    const envelope = JSON.parse(provenance.out.split("\n").find((line) => line.startsWith("{")) ?? "{}") as { payload?: string };
    expect(Buffer.from(envelope.payload ?? "", "base64").toString("utf8")).toContain(git("rev-parse", "HEAD"));
    // The other images keep the commit they were signed with in the set's inputs (the provider's
    // check keeps the facts while the digest stays): a new commit must not change every image's
    // inputs, or the state would say they were attested on a commit they were not.
    const commits = Object.values(attestationImages(await dev.stack.exportStack()))
      .map((image) => (image as { provenanceFacts?: { source?: { commit?: string } } }).provenanceFacts?.source?.commit);
    expect(commits.length).toBe(6);
    expect(commits.filter((commit: string | undefined) => commit === commitBefore).length).toBe(5);
    expect(commits.filter((commit: string | undefined) => commit === git("rev-parse", "HEAD")).length).toBe(1);
  });

  it("publishes a stack without a key unsigned, and says so", async () => {
    const plain = await world.stack("plain", { channel: "plain" });
    const run = await upWithSummary(world, "plain", "plain");
    outputsLog.push(run.out);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("not signed (no strata:signingKey)");
    const layers = (await plain.outputs()) as unknown as Record<string, SignedLayerOutput>;
    for (const layer of Object.values(layers)) expect(layer.signature).toBeUndefined();
    const tags = Object.values(await registryContents(plain.group)).flat();
    expect(tags.length).toBeGreaterThan(0);
    expect(tags.filter((tag) => tag.endsWith(".sig") || tag.endsWith(".att"))).toEqual([]);
  });

  it("keeps the key and its passphrase out of logs, outputs and the state", async () => {
    // The state as the backend keeps it: `pulumi stack export` without --show-secrets (the
    // Automation API's exportStack decrypts every secret, by design).
    const exported = execFileSync("pulumi", ["stack", "export", "--stack", "dev", "--non-interactive"], { cwd: world.projectDir, encoding: "utf8", env: { ...process.env, ...world.env } });
    // The key is there, as a secret: the ImageAttestationsSet's inputs hold it encrypted.
    expect(exported).toMatch(/"signingKey": \{\s*"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",\s*"ciphertext"/);
    const keyLines = key.privateKeyPem.split("\n").map((line) => line.trim()).filter((line) => line.length >= 16 && !line.startsWith("-----"));
    expect(keyLines.length).toBeGreaterThan(0);
    // The key as the provider holds it once unlocked (it signs in-process): the private scalar in
    // every spelling a leak would take, and the lines of its unencrypted PKCS#8 PEM but the first
    // (which starts with the prefix every P-256 key shares).
    const unlocked = await unlockCosignKey(key.privateKeyPem, PASSPHRASE);
    const scalar = Buffer.from((unlocked.privateKey.export({ format: "jwk" }) as { d?: string }).d ?? "", "base64url");
    expect(scalar.length).toBe(32);
    const plainPemLines = (unlocked.privateKey.export({ format: "pem", type: "pkcs8" }) as string).split("\n").filter((line) => line.length >= 16 && !line.startsWith("-----")).slice(1);
    const unlockedForms = [scalar.toString("base64url"), scalar.toString("base64"), scalar.toString("hex"), ...plainPemLines];
    keyLines.push(...unlockedForms);
    // The state export, what the runs printed, the stack outputs, and every file the runs left in the world (backend, logs, reports).
    const haystacks = [exported, ...outputsLog, ...filesUnder(world.root).filter((file) => !file.endsWith(".tar")).map((file) => readFileSync(file, "utf8"))];
    expect(haystacks.length).toBeGreaterThan(5);
    for (const text of haystacks) {
      expect(text).not.toContain(PASSPHRASE);
      for (const line of keyLines) expect(text).not.toContain(line);
    }
    // The stack file holds them as secrets (ciphertext), which strata up checks.
    expect(readFileSync(path.join(world.projectDir, "Pulumi.dev.yaml"), "utf8")).toContain("secure:");
  });

  // After the leak check above: these put key material where it must not be, on purpose.
  it("starts no child with the stack's config decrypted: git run by the program, tar run by Strata's provider, get neither the key, its passphrase nor the state's passphrase", async () => {
    // A git and a tar that write their environment down, then run the real ones: the program asks
    // git for the catalog's commit and tree; Strata's provider (builder strata) tars each build context.
    const bin = mkdtempSync(path.join(tmpdir(), "strata-child-env-"));
    try {
      for (const tool of ["git", "tar"]) {
        const real = execFileSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
        writeFileSync(path.join(bin, tool), `#!/bin/bash\nenv >> '${path.join(bin, `${tool}.env`)}'\necho '--- end of one ${tool}' >> '${path.join(bin, `${tool}.env`)}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
      }
      const watched = await world.stack("envwatch", { channel: "envwatch", layers: JSON.stringify(["base"]), builder: "strata" }, { secrets: { signingKey: key.privateKeyPem, signingKeyPassphrase: PASSPHRASE }, env: { PATH: `${bin}:${process.env.PATH ?? ""}` } });
      await watched.up();
      for (const tool of ["git", "tar"]) {
        const environments = readFileSync(path.join(bin, `${tool}.env`), "utf8");
        // It did run, and this is its environment (the stack's own variables are there).
        expect(environments).toContain(`--- end of one ${tool}`);
        expect(environments, tool).toMatch(/^PULUMI_BACKEND_URL=/m);
        expect(environments, tool).not.toMatch(/^PULUMI_CONFIG(_SECRET_KEYS|_PASSPHRASE|_PASSPHRASE_FILE)?=/m);
        expect(environments, tool).not.toContain(PASSPHRASE);
        for (const line of key.privateKeyPem.split("\n").filter((part) => part.length >= 16 && !part.startsWith("-----"))) expect(environments, tool).not.toContain(line);
      }
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("fails a run whose passphrase does not open the key, saying so without the key, and claims no signature", async () => {
    await world.stack("wrongpass", { channel: "wrongpass" }, { secrets: { signingKey: key.privateKeyPem, signingKeyPassphrase: "wrong-passphrase-77" } });
    const run = await upWithSummary(world, "wrongpass", "wrongpass");
    expect(run.code, run.out).not.toBe(0);
    expect(run.out).toContain("strata:signingKeyPassphrase does not open strata:signingKey");
    expect(run.out).toContain("not signed (the run did not finish: its signatures are not known)");
    expect(run.out).not.toContain("wrong-passphrase-77");
    for (const line of key.privateKeyPem.split("\n").filter((part) => part.length >= 16 && !part.startsWith("-----"))) expect(run.out).not.toContain(line);
    // The images were pushed; no signature or attestation was (review 122).
    const tags = Object.values(await registryContents(`${world.osRelease}-mos9.0-wrongpass`)).flat();
    expect(tags.length).toBeGreaterThan(0);
    expect(tags.filter((tag) => /\.(sig|att)$/.test(tag))).toEqual([]);
  });

  it("refuses a key kept in plain text in the stack file before anything runs, without quoting it", async () => {
    await world.stack("plainkey", { channel: "plainkey", signingKey: key.privateKeyPem }, { secrets: { signingKeyPassphrase: PASSPHRASE } });
    const run = await runStrata(world, ["up", "--stack", "plainkey", "--catalog", world.catalogDir]);
    expect(run.code, run.out).not.toBe(0);
    expect(run.out).toMatch(/Pulumi\.plainkey\.yaml: strata:signingKey: is stored in plain text/);
    for (const line of key.privateKeyPem.split("\n").filter((part) => part.length >= 16 && !part.startsWith("-----"))) expect(run.out).not.toContain(line);
    expect(Object.keys(await registryContents(`${world.osRelease}-mos9.0-plainkey`))).toEqual([]);
  });
});

describe("a signed multi-platform layer", () => {
  const PLATFORMS = ["linux/amd64", "linux/arm64"];
  let world: E2eWorld;
  let keysDir: string;
  let cosign: string;
  let publicKeyFile: string;

  beforeAll(async () => {
    cosign = cosignBinary();
    world = createWorld("signing-mp");
    makeMultiPlatform(world);
    commitCatalog(world);
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-signing-mp-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    publicKeyFile = pair.publicKeyFile;
    await world.stack("dev", { platforms: JSON.stringify(PLATFORMS), layers: JSON.stringify(["tools"]) }, { secrets: { signingKey: pair.key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
  });
  afterAll(async () => {
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("signs and attests the index, each platform's image in the index's repository, and each per-platform image", async () => {
    const run = await upWithSummary(world, "dev", "mp", { STRATA_COSIGN: NO_COSIGN });
    expect(run.code, run.out).toBe(0);
    const stack = await LocalWorkspace.selectStack({ stackName: "dev", workDir: world.projectDir }, { envVars: { ...world.env } });
    const layers = ((await stack.outputs()).layers?.value ?? {}) as Record<string, SignedLayerOutput & { platforms?: Record<string, string> }>;
    const tools = layers.tools as SignedLayerOutput & { platforms: Record<string, string> };
    expect(Object.keys(tools.platforms)).toEqual(PLATFORMS);
    const refs = [tools.digestRef, ...Object.values(tools.platforms), ...PLATFORMS.map((platform) => (layers[`tools@${platform.replace("/", "-")}`] as SignedLayerOutput).digestRef)];
    expect(new Set(refs).size).toBe(5);
    for (const ref of refs) {
      const verify = cosignCli(cosign, ["verify", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref]);
      expect(verify.code, `${ref}: ${verify.out}`).toBe(0);
      for (const type of ["spdxjson", "slsaprovenance1"]) {
        const attested = cosignCli(cosign, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", type, ref]);
        expect(attested.code, `${ref} ${type}: ${attested.out}`).toBe(0);
      }
      expect(await tagLayers(ref, "sig")).toBe(1);
    }
    expect(tools.signature).toBe(`${tools.digestRef.slice(0, tools.digestRef.indexOf("@"))}:sha256-${digestHex(tools.digestRef)}.sig`);
    // Every row (the index's, which stands for its platform images in its repository too, and each
    // per-platform image's) was signed by this run; a rerun writes nothing, and says so.
    const words = (summary: UpSummary): Record<string, unknown> => Object.fromEntries(summary.layers.map((layer) => [layer.layer, layer.signed]));
    expect(Object.keys(words(run.summary))).toEqual(expect.arrayContaining(["tools", "tools@linux-amd64", "tools@linux-arm64"]));
    expect(Object.values(words(run.summary))).toEqual(run.summary.layers.map(() => "signed"));
    const again = await upWithSummary(world, "dev", "mp-again", { STRATA_COSIGN: NO_COSIGN });
    expect(again.code, again.out).toBe(0);
    expect(Object.values(words(again.summary))).toEqual(again.summary.layers.map(() => "signed before"));
  });
});
