/**
 * The sample tree (`layers/`: Debian's rootfs, then Python and keystone from Debian's packages)
 * built and signed on a stack with a key and a trust policy, as the README's signing walkthrough
 * does. Every other signing test signs busybox trees, which hold no package at all; this is the one
 * whose SBOMs read real dpkg databases and Python egg-info through every layer — where the SBOM
 * reader once stalled for good on the `ms` layer (modern-tar's decoder, a cancelled entry body):
 * the run must end, every image verify with plain cosign, the Debian base's SBOM list exactly the
 * packages make-rootfs.sh wrote beside its rootfs, and `strata verify` pass every image.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cosign } from "../../src/engine/cosign.js";
import { catalogGit, commitCatalog, createWorld, type E2eStack, type E2eWorld, registry, registryAddress, repoRoot, runStrata, upWithSummary } from "./harness.js";
import { cosignBinary, cosignCli } from "./cosign-cli.js";

const PASSPHRASE = "sample-passphrase-7c20b4";
const SAMPLE_LAYERS = ["debian", "keystone", "keystone-base", "mos", "ms", "mysql"];

interface SignedLayerOutput {
  readonly digestRef: string;
  readonly parent: string | null;
  readonly packages?: number;
}

interface SpdxPackage {
  readonly name: string;
  readonly versionInfo: string;
  readonly externalRefs?: readonly { readonly referenceType: string; readonly referenceLocator: string }[];
}


/** The predicate of the attestation of one type, as plain `cosign verify-attestation` printed it. */
function verifiedPredicate<T>(binary: string, publicKeyFile: string, type: "spdxjson" | "slsaprovenance1", digestRef: string): T {
  const run = cosignCli(binary, ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--type", type, digestRef]);
  expect(run.code, run.out).toBe(0);
  const envelope = JSON.parse(run.out.split("\n").find((line) => line.startsWith("{")) ?? "{}") as { payload?: string };
  return (JSON.parse(Buffer.from(envelope.payload ?? "", "base64").toString("utf8")) as { predicate: T }).predicate;
}

const purlOf = (found: SpdxPackage): string | undefined => found.externalRefs?.find((ref) => ref.referenceType === "purl")?.referenceLocator;

describe("the sample tree, signed as the README's walkthrough signs it", () => {
  let world: E2eWorld;
  let keysDir: string;
  let cosign: string;
  let publicKeyFile: string;
  let dev: E2eStack;
  const git = (...args: string[]): string => catalogGit(world, ...args);

  beforeAll(async () => {
    cosign = cosignBinary();
    // The sample's base is made by debootstrap, not here: scripts/test.sh makes it before the suites.
    const rootfs = path.join(repoRoot, "layers/debian/rootfs.tar");
    if (!existsSync(rootfs) || !existsSync(`${rootfs}.packages`)) throw new Error(`${rootfs} (and its .packages list) is missing: make it with scripts/make-rootfs.sh debian layers/debian/rootfs.tar (scripts/test.sh does)`);
    world = createWorld("sample", { catalog: path.join(repoRoot, "layers") });
    // The rootfs is generated, never committed (as in the project's own .gitignore): the tree is clean without it.
    writeFileSync(path.join(world.catalogDir, ".gitignore"), "*/rootfs.tar\n*/rootfs.tar.packages\n");
    commitCatalog(world);
    git("update-ref", "refs/remotes/origin/main", "HEAD");
    keysDir = mkdtempSync(path.join(tmpdir(), "strata-sample-keys-"));
    const pair = await new Cosign({ binary: cosign }).generateKeyPair(keysDir, PASSPHRASE);
    publicKeyFile = pair.publicKeyFile;
    mkdirSync(path.join(world.projectDir, "keys"));
    copyFileSync(publicKeyFile, path.join(world.projectDir, "keys/ci.pub"));
    const trust = JSON.stringify({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" });
    dev = await world.stack("dev", { trust }, { secrets: { signingKey: pair.key.privateKeyPem, signingKeyPassphrase: PASSPHRASE } });
  });
  afterAll(async () => {
    await world?.cleanup();
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
  });

  it("builds and signs all six layers; plain cosign verifies each; the SBOMs hold the Debian packages and the Python distributions", async () => {
    const up = await upWithSummary(world, "dev", "first");
    expect(up.code, up.out).toBe(0);
    expect(up.out).toContain("signed and attested (SBOM, provenance): 6 images");
    expect(Object.keys(up.results).sort()).toEqual(SAMPLE_LAYERS);
    const rows = Object.fromEntries(up.summary.layers.map((row) => [row.layer, row]));
    const layers = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    const commit = git("rev-parse", "HEAD");
    const packagesOf: Record<string, SpdxPackage[]> = {};
    for (const name of SAMPLE_LAYERS) {
      const layer = layers[name] as SignedLayerOutput;
      expect(rows[name]?.signed, name).toBe("signed");
      const verify = cosignCli(cosign, ["verify", "--key", publicKeyFile, "--insecure-ignore-tlog=true", layer.digestRef]);
      expect(verify.code, verify.out).toBe(0);
      const sbom = verifiedPredicate<{ packages: SpdxPackage[] }>(cosign, publicKeyFile, "spdxjson", layer.digestRef);
      // The document's first package is the image itself (its digest, an OCI purl); the rest, what it holds.
      expect(sbom.packages[0]?.versionInfo, name).toBe(layer.digestRef.slice(layer.digestRef.indexOf("@") + 1));
      packagesOf[name] = sbom.packages.slice(1);
      expect(packagesOf[name]?.length, name).toBe(layer.packages);
      expect(rows[name]?.packages, name).toBe(layer.packages);
      const provenance = verifiedPredicate<{ buildDefinition: { externalParameters: { source: { commit: string; tree: string }; parent: string | null } } }>(cosign, publicKeyFile, "slsaprovenance1", layer.digestRef);
      expect(provenance.buildDefinition.externalParameters.source).toMatchObject({ commit, tree: "clean" });
      expect(provenance.buildDefinition.externalParameters.parent).toBe(layer.parent === null ? null : layers[layer.parent]?.digestRef);
    }
    // The Debian base: exactly the packages (and versions) debootstrap put in its rootfs.
    const expected = readFileSync(path.join(world.catalogDir, "debian/rootfs.tar.packages"), "utf8").trim().split("\n").sort();
    expect(expected.length).toBeGreaterThan(50);
    const debs = (name: string): string[] => (packagesOf[name] ?? []).filter((found) => purlOf(found)?.startsWith("pkg:deb/debian/")).map((found) => `${found.name}=${found.versionInfo}`).sort();
    expect(debs("debian")).toEqual(expected);
    expect(rows.debian?.packagesAdded).toBe(expected.length);
    // ms installs Python from Debian: its dpkg packages and the distributions' egg-info/dist-info (MarkupSafe, with Jinja2, is egg-info in bookworm).
    const pypi = (name: string): string[] => (packagesOf[name] ?? []).map(purlOf).filter((purl): purl is string => purl?.startsWith("pkg:pypi/") === true);
    expect(pypi("mos")).toEqual([]);
    expect(pypi("ms")).toEqual(expect.arrayContaining([expect.stringMatching(/^pkg:pypi\/markupsafe@/), expect.stringMatching(/^pkg:pypi\/jinja2@/), expect.stringMatching(/^pkg:pypi\/pyyaml@/)]));
    expect(debs("ms")).toEqual(expect.arrayContaining([expect.stringMatching(/^python3-jinja2=/)]));
    expect(pypi("keystone")).toEqual(expect.arrayContaining([expect.stringMatching(/^pkg:pypi\/keystone@/)]));
    expect(pypi("keystone-base").some((purl) => purl.startsWith("pkg:pypi/keystone@"))).toBe(false);
    // Each child added packages over its parent, and lists its parent's (a layer's SBOM is the whole image).
    for (const name of SAMPLE_LAYERS.filter((layer) => layer !== "debian")) {
      expect(rows[name]?.packagesAdded, name).toBeGreaterThan(0);
      const parent = layers[name]?.parent as string;
      expect(debs(name), name).toEqual(expect.arrayContaining(debs(parent)));
    }
  });

  it("passes strata verify against the stack's trust policy, every image, and a rerun writes nothing", async () => {
    const verified = await runStrata(world, ["verify", "--stack", "dev", "--catalog", world.catalogDir, "--json"], { STRATA_COSIGN: cosign });
    expect(verified.code, verified.out).toBe(0);
    const data = JSON.parse(verified.out.slice(verified.out.indexOf("{"))) as { images: { layer: string; admitted: boolean; signedBy: string; reviewed: string }[] };
    expect(data.images.map((image) => [image.layer, image.admitted, image.signedBy, image.reviewed]).sort()).toEqual(SAMPLE_LAYERS.map((layer) => [layer, true, "keys/ci.pub", "yes"]));
    const layers = (await dev.outputs()) as unknown as Record<string, SignedLayerOutput>;
    const tagsBefore = await Promise.all(SAMPLE_LAYERS.map(async (name) => {
      const digestRef = (layers[name] as SignedLayerOutput).digestRef;
      const repository = digestRef.slice(registryAddress.length + 1, digestRef.indexOf("@"));
      const hex = digestRef.slice(digestRef.indexOf("@sha256:") + "@sha256:".length);
      return { repository, tags: [`sha256-${hex}.sig`, `sha256-${hex}.att`] };
    }));
    const digests = async (): Promise<(string | undefined)[]> => Promise.all(tagsBefore.flatMap(({ repository, tags }) => tags.map(async (tag) => (await registry.manifest(repository, tag))?.digest)));
    const before = await digests();
    expect(before.every((digest) => digest !== undefined)).toBe(true);
    const again = await upWithSummary(world, "dev", "again");
    expect(again.code, again.out).toBe(0);
    expect(new Set(Object.values(again.results))).toEqual(new Set(["unchanged"]));
    expect(await digests()).toEqual(before);
  });
});
