/**
 * What `strata:index:ImageAttestations` does when it is created (issue 29): the SBOM of the pushed
 * image read from its registry layers (registry/image-files.ts, core/sbom.ts), its SLSA provenance
 * (core/provenance.ts), then cosign signs the digest and attests both, in cosign's classic
 * `.sig`/`.att` tags of the image's own repository (engine/cosign.ts).
 *
 * Never signs a digest twice (a second signature appends a layer to the `.sig` manifest): a `.sig`
 * tag already in the registry (an adopted image an earlier run signed, or this resource's own
 * create that failed after signing) is left as it is, and only the attestation types the `.att`
 * manifest lacks are written. Whether that earlier signature is by a trusted key is the verifier's
 * question (the promotion gate, `cosign verify`), which this never answers for it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { type Cosign } from "../../engine/cosign.js";
import { provenancePredicateBytes } from "../../core/provenance.js";
import { type ImagePackage, imagePackages, serializeSpdx, spdxDocument } from "../../core/sbom.js";
import { type RegistryClient, RegistryError } from "../../registry/client.js";
import { imageFiles } from "../../registry/image-files.js";
import { cosignTag, type ImageAttestationsInputs, type ImageAttestationsOutputs } from "./image-attestations-inputs.js";

/** The predicate types cosign v2 records in each `.att` layer's `predicateType` annotation. */
export const PREDICATE_TYPES = { spdxjson: "https://spdx.dev/Document", slsaprovenance1: "https://slsa.dev/provenance/v1" } as const;

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** The SBOM of one image, or of an index: the packages of every platform image, each listed once. */
export async function sbomOf(client: RegistryClient, inputs: Pick<ImageAttestationsInputs, "registry" | "repository" | "digest" | "tag">, tool: string): Promise<{ bytes: string; packages: number }> {
  const image = `${inputs.registry}/${inputs.repository}@${inputs.digest}`;
  const found = await client.manifest(inputs.repository, inputs.digest);
  if (found === undefined) throw new RegistryError(`${image}: the registry has no such manifest (HTTP 404), so its SBOM cannot be read and it is not signed; push it again (strata up)`, 404, "no such manifest");
  const children = found.manifest.manifests;
  const subject = { ref: `${inputs.registry}/${inputs.repository}:${inputs.tag}`, digest: inputs.digest, tool };
  if (children === undefined) {
    const read = await imageFiles(client, inputs.repository, inputs.digest);
    const architecture = read.config.architecture === undefined ? undefined : `${read.config.architecture}${read.config.variant === undefined ? "" : `/${read.config.variant}`}`;
    const document = spdxDocument({ ...subject, ...(architecture === undefined ? {} : { architecture }), ...(read.config.created === undefined ? {} : { created: read.config.created }) }, imagePackages(read.files));
    return { bytes: serializeSpdx(document), packages: document.packages.length - 1 };
  }
  // An index: what a pull of any platform can bring. A package the same in two platforms (same purl,
  // same file: `all` packages) is listed once; the time is the newest platform image's.
  const union = new Map<string, ImagePackage>();
  let created: string | undefined;
  for (const child of children) {
    const read = await imageFiles(client, inputs.repository, child.digest);
    for (const found of imagePackages(read.files)) union.set(`${found.purl}\0${found.foundIn}`, found);
    const time = read.config.created;
    if (time !== undefined && (created === undefined || Date.parse(time) > Date.parse(created))) created = time;
  }
  const document = spdxDocument({ ...subject, ...(created === undefined ? {} : { created }) }, [...union.values()]);
  return { bytes: serializeSpdx(document), packages: document.packages.length - 1 };
}

/** The predicate types an `.att` manifest already holds (one layer per attestation). */
async function attestedTypes(client: RegistryClient, repository: string, digest: string): Promise<Set<string>> {
  const found = await client.manifest(repository, cosignTag(digest, "att"));
  const layers = (found?.manifest.layers ?? []) as readonly { annotations?: Record<string, string> }[];
  return new Set(layers.map((layer) => layer.annotations?.predicateType).filter((type): type is string => type !== undefined));
}

/**
 * cosign reads registry logins from a Docker config: with a stack login, one of its own for the
 * call's length (0600 in a 0700 folder of this process, removed after), else the user's.
 */
async function withRegistryLogin<T>(inputs: ImageAttestationsInputs, work: (env: Record<string, string>) => Promise<T>): Promise<T> {
  if (inputs.registryAuth === undefined) return work({});
  const dir = mkdtempSync(path.join(tmpdir(), "strata-cosign-login-"));
  try {
    const auth = Buffer.from(`${inputs.registryAuth.username}:${inputs.registryAuth.password}`).toString("base64");
    writeFileSync(path.join(dir, "config.json"), JSON.stringify({ auths: { [inputs.registry]: { auth } } }), { mode: 0o600 });
    return await work({ DOCKER_CONFIG: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function attestImage(client: RegistryClient, inputs: ImageAttestationsInputs, cosignFor: (env: Record<string, string>) => Cosign): Promise<ImageAttestationsOutputs> {
  const { provenanceFacts: facts } = inputs;
  const sbom = await sbomOf(client, inputs, `Strata-${facts.strataVersion}`);
  const predicate = provenancePredicateBytes({
    image: `${inputs.registry}/${inputs.repository}`,
    digest: inputs.digest,
    source: facts.source,
    fingerprint: facts.fingerprint,
    layer: facts.layer,
    ...(facts.parent === null ? {} : { parent: facts.parent }),
    buildArgs: facts.buildArgs,
    platform: facts.platform,
    stack: facts.stack,
    channel: facts.channel,
    strataVersion: facts.strataVersion,
    runId: facts.runId,
    engine: facts.engine,
  });
  const signedBefore = (await client.manifest(inputs.repository, cosignTag(inputs.digest, "sig"))) !== undefined;
  const attested = await attestedTypes(client, inputs.repository, inputs.digest);
  await withRegistryLogin(inputs, async (env) => {
    const cosign = cosignFor(env);
    if (!signedBefore) await cosign.sign([inputs.digestRef], inputs.signingKey);
    if (!attested.has(PREDICATE_TYPES.spdxjson)) await cosign.attest(inputs.digestRef, inputs.signingKey, "spdxjson", Buffer.from(sbom.bytes, "utf8"));
    if (!attested.has(PREDICATE_TYPES.slsaprovenance1)) await cosign.attest(inputs.digestRef, inputs.signingKey, "slsaprovenance1", predicate);
  });
  const at = (suffix: "sig" | "att"): string => `${inputs.registry}/${inputs.repository}:${cosignTag(inputs.digest, suffix)}`;
  return {
    signature: at("sig"),
    sbom: at("att"),
    provenance: at("att"),
    packages: sbom.packages,
    sbomDigest: sha256(sbom.bytes),
    provenanceDigest: sha256(predicate),
    signedBefore,
  };
}
