/**
 * The shared verifier (issue 29, items 5 and 7): is each image signed by a trusted key, attested
 * with SLSA provenance naming a reviewed commit built from a clean tree, and with an SPDX SBOM?
 * The promotion gate (pulumi/channel-run.ts, before any copy is declared) and `strata verify` both ask it.
 *
 * The verifier is the real cosign CLI (engine/cosign.ts), several digests per call (a call costs
 * about what one digest does), then each digest alone when a call fails, to say which one; git
 * answers whether a commit is reviewed (source-info.ts). What the answers mean is decided in
 * core/trust-verdict.ts. Anything Strata cannot know (cosign missing or timing out, the registry
 * failing, git unable to answer) is a failure of that image, never an admission.
 */
import { InputError, UserError } from "../core/problems.js";
import { TRUST_KEY, type TrustedKey } from "../core/trust-policy.js";
import { decideVerdict, digestOf, readEvidence, type CosignAnswer, type ImageVerdict, type KeyAnswers, type ReviewAnswer, type VerifyTarget, namesSeveralSubjects, withReviewedProvenance } from "../core/trust-verdict.js";
import { parseReference } from "../core/reference.js";
import { Cosign, type AttestationType, type RegistryLogin } from "./cosign.js";
import { createPublicKey } from "node:crypto";
import { type RegistryClient } from "../registry/client.js";
import { cosignSigners, cosignTagDigests } from "../registry/signatures.js";
import { escaped, isReviewedAt, type ReviewedTip, reviewedTip } from "./source-info.js";

export type { ImageVerdict, VerifyTarget } from "../core/trust-verdict.js";

export interface TrustInput {
  /** Trusted public keys (core/trust-policy.ts TrustedKey: configured path, absolute file, PEM). */
  readonly keys: readonly TrustedKey[];
  /**
   * The reviewed ref, read (readReviewedTip): the provenance commit must be an ancestor of its
   * commit. Undefined only for `strata verify --key` without a policy: reviewed is not checked and
   * says "not checked". Never optional, so a caller cannot leave it out by mistake.
   */
  readonly reviewed: ReviewedTip | undefined;
  /** The git checkout that answers "is this commit reviewed": the catalog's, whose commit the provenance names. */
  readonly checkoutDir: string;
}

export interface VerifyOptions {
  readonly cosignBinary: string;
  /** Environment for cosign on top of this process's (DOCKER_CONFIG for registry logins). */
  readonly env?: Record<string, string>;
  /** The stack's own registry login, when it has one (strata:registryUsername): cosign reads with it. */
  readonly registryLogin?: RegistryLogin;
  readonly timeoutMs?: number;
  readonly perReferenceMs?: number;
  /**
   * The registry the images are in, read by Strata itself when a batch fails for a key: an image
   * whose `.sig` and `.att` signatures all verify with other trusted keys is not asked about alone
   * with that key (cosignSigners). Without it every image of a failed batch is asked alone.
   */
  readonly signatureReader?: Pick<RegistryClient, "registry" | "manifest" | "blobStream">;
}

/** Whether an image's signatures, as Strata reads them, leave out a key: `signers` when every signature there is a trusted key's (and the tags' manifests then). */
type SignersOf = (ref: string) => Promise<{ signers: ReadonlySet<string>; tags: Readonly<Record<string, string | null>> } | { unaccounted: string }>;

/** An answer given without cosign (a key that made none of the image's signatures), to be confirmed once cosign is done. */
interface LeftOut {
  readonly key: string;
  readonly check: Check;
  readonly ref: string;
}

type Check = "signature" | AttestationType;

const CHECK_NAMES: Readonly<Record<Check, string>> = { signature: "signature", slsaprovenance1: "provenance attestation", spdxjson: "SBOM attestation" };

/**
 * What cosign's calls at one registry have shown in this run, over every check and key: the last
 * call, when it ran out of time, and, once two in a row did, why cosign seems to hang there. One
 * call out of time is not enough (one image's registry read may be what hangs); two in a row, the
 * registry or cosign hangs, and asking each of the rest (up to a one-digest limit each, one after
 * another, for each check and key) could take hours for the same refusal.
 */
interface HangWatch {
  lastOutOfTime?: string;
  hung?: string;
}

/** The answer for a digest cosign was not asked about, because it seemed to hang (`hung` says why). */
const notAsked = (hung: string): CosignAnswer => ({ kind: "could not tell", detail: `cosign was not asked about it: ${hung}, so the registry or cosign seems to hang; run again once it answers` });

/**
 * One check with one key over several digest references of one registry: one cosign call; when
 * it fails and there were several, one call per reference (cosign stops at the first failure, so
 * the batch's answer says only that one of them failed), and so too when it verified statements
 * that name several subjects (namesSeveralSubjects). A batch that verifies gives every
 * reference all its payloads: core/trust-verdict.ts keeps only those naming each digest (a batch
 * never holds one digest twice: batchesOf). Once `watch` says cosign hangs at the registry, the
 * references not yet asked are refused as not asked.
 */
async function answersFor(cosign: Cosign, check: Check, refs: readonly string[], key: { configured: string; file: string; id: string }, registry: string, watch: HangWatch, signersOf?: SignersOf, leftOut: LeftOut[] = []): Promise<Map<string, CosignAnswer>> {
  const run = (some: string | readonly string[]): Promise<CosignAnswer> => (check === "signature" ? cosign.verify(some, key.file) : cosign.verifyAttestation(some, key.file, check));
  const answers = new Map<string, CosignAnswer>();
  const refuseRest = (asked: number): Map<string, CosignAnswer> => {
    for (const ref of refs.slice(asked)) answers.set(ref, notAsked(watch.hung as string));
    return answers;
  };
  /** Notes whether a call ran out of time; true once that makes two in a row. */
  const noted = (answer: CosignAnswer, about: string): boolean => {
    if (answer.kind !== "could not tell" || answer.timedOut !== true) {
      watch.lastOutOfTime = undefined;
      return false;
    }
    const call = `the ${CHECK_NAMES[check]} check of ${about} with ${key.configured}`;
    if (watch.lastOutOfTime === undefined) {
      watch.lastOutOfTime = call;
      return false;
    }
    watch.hung = `cosign ran out of time at ${registry} twice in a row, on ${watch.lastOutOfTime}, then on ${call}`;
    return true;
  };
  if (watch.hung !== undefined) return refuseRest(0);
  const batch = await run(refs);
  // A batch whose statements name several subjects cannot be shared out by digest: each image is asked alone.
  const sharable = batch.kind === "verified" && !(refs.length > 1 && namesSeveralSubjects(batch.payloads));
  // A batch that made it two in a row: its own answer (out of time) for each of its references.
  if (noted(batch, refs.length === 1 ? `${refs[0] as string} alone` : `a batch of ${refs.length} images`) || sharable || refs.length === 1) {
    for (const ref of refs) answers.set(ref, batch);
    return answers;
  }
  for (const [index, ref] of refs.entries()) {
    // A key that made none of the image's signatures (a key rotation: the new key has signed nothing
    // yet): cosign could only refuse it, so it is not asked. Only when Strata accounts for every
    // signature there with another trusted key; anything else is cosign's to answer.
    const signers = signersOf === undefined ? undefined : await signersOf(ref);
    if (signers !== undefined && "signers" in signers && !signers.signers.has(key.id)) {
      answers.set(ref, { kind: "mismatch", detail: `the ${CHECK_NAMES[check]} is not by this key: every signature its .sig and .att hold verifies with another trusted key (${signers.signers.size === 0 ? "there are none" : "checked by Strata"}), so cosign was not asked` });
      leftOut.push({ key: key.configured, check, ref });
      continue;
    }
    const alone = await run(ref);
    answers.set(ref, alone);
    if (noted(alone, `${ref} alone`)) return refuseRest(index + 1);
  }
  return answers;
}

/**
 * The most digest references one cosign call is asked about. cosign prints every envelope of a
 * batch that verifies, and an SBOM's is about 1 KB a package (an image of 500 packages: about
 * 530 KB), so a release's 190 such images in one call would pass the 64 MiB of a call's output
 * Strata reads (COSIGN_OUTPUT_BYTES), and the batch would fall back to a call per image. 32 images
 * stay under it up to about 2 MiB of SBOM each, for one cosign start (about 0.15 CPU-s) more per 32
 * images.
 */
export const COSIGN_BATCH_LIMIT = 32;

/**
 * The calls' digest references, at most COSIGN_BATCH_LIMIT a call: one registry a call (cosign's
 * plain-HTTP flag covers a whole call, so one never mixes loopback and remote registries), and one
 * digest at most once a call. cosign prints a batch's payloads without saying which reference each
 * came from, so two repositories holding one digest (an index's platform image and the platform's
 * own layer) in one call would each be judged on the other's attestations too: a later call asks
 * about the second.
 */
function batchesOf(refs: readonly string[]): { registry: string; refs: string[] }[] {
  const batches: { registry: string; refs: string[]; digests: Set<string> }[] = [];
  for (const ref of refs) {
    const registry = parseReference(ref).registry;
    // (Only digest references come here: verifyImages keeps those.)
    const digest = digestOf(ref) ?? ref;
    const batch = batches.find((candidate) => candidate.registry === registry && !candidate.digests.has(digest) && candidate.refs.length < COSIGN_BATCH_LIMIT);
    if (batch === undefined) batches.push({ registry, refs: [ref], digests: new Set([digest]) });
    else batch.refs.push(ref), batch.digests.add(digest);
  }
  return batches.map(({ registry, refs: batchRefs }) => ({ registry, refs: batchRefs }));
}

/**
 * The trust policy's reviewed ref (`reviewedRef`, configured in `file`), read once before any image
 * is verified: a ref git cannot name a single remote-tracking ref or tag for (unknown to the
 * checkout, a local branch, ambiguous) is the policy's problem, the same for every image, so it is
 * said once, as bad input, and nothing is admitted; and every image is judged against the one
 * commit it named then, even if a fetch moves the ref meanwhile.
 */
export async function readReviewedTip(checkoutDir: string, reviewedRef: string, file: string): Promise<ReviewedTip> {
  const tip = await reviewedTip(checkoutDir, reviewedRef);
  if (!("kind" in tip)) return tip;
  // git could not answer at all (no repository there, git missing): the checkout's problem, not the policy's.
  if (tip.about === "checkout") throw new UserError(`cannot ask the catalog's git checkout at ${escaped(checkoutDir)} which commit strata:${TRUST_KEY}.reviewedRef (${file}) names, so no image can be checked against it: ${tip.detail}; fix: run from a git checkout of the catalog (one that has fetched ${reviewedRef}) with git installed, as its owner or with the checkout in git's safe.directory, then run again`);
  throw new InputError([{
    file,
    field: `strata:${TRUST_KEY}.reviewedRef`,
    message: `cannot say which reviewed commit it names, so no image can be checked against it: ${tip.detail}`,
    fix: "name the remote-tracking ref your review system moves (such as origin/main) or a tag, and fetch it into the catalog's git checkout (git fetch), then run again",
  }]);
}

/**
 * Whether cosign reads an image's signatures where Strata does, beside the image: not when the
 * environment it is given names COSIGN_REPOSITORY (this process's own COSIGN_* never reach it: cosign.ts).
 */
function signaturesWhereStrataReads(env: Readonly<Record<string, string>> | undefined): boolean {
  return (env?.COSIGN_REPOSITORY ?? "") === "";
}

/**
 * Whether cosign (go-containerregistry's name parsing) reads a reference in this registry at the
 * address Strata does: not for Docker Hub's names, nor for a first component that is no host to it
 * (no dot or port, not localhost), which it takes for a Docker Hub repository.
 */
function cosignReadsAsNamed(registry: string): boolean {
  if (["docker.io", "index.docker.io", "registry-1.docker.io"].includes(registry)) return false;
  return registry === "localhost" || registry.includes(".") || registry.includes(":");
}

/** cosignSigners for each digest reference, read once whatever the key and check; a failed read or another registry is unaccounted. */
function signersReader(reader: NonNullable<VerifyOptions["signatureReader"]>, keys: readonly { readonly id: string; readonly pem: string }[]): SignersOf {
  const signerKeys = keys.map((key) => ({ id: key.id, publicKey: createPublicKey(key.pem) }));
  const known = new Map<string, ReturnType<SignersOf>>();
  return (ref) => {
    let asked = known.get(ref);
    if (asked === undefined) {
      const parsed = parseReference(ref);
      asked = parsed.registry !== reader.registry || parsed.digest === undefined || !cosignReadsAsNamed(parsed.registry)
        ? Promise.resolve({ unaccounted: `${ref} is not in ${reader.registry}, or cosign may read it elsewhere` })
        : cosignSigners(reader, parsed.path, parsed.digest, signerKeys).catch((error: unknown) => ({ unaccounted: `its cosign tags could not be read (${(error as Error).message})` }));
      known.set(ref, asked);
    }
    return asked;
  };
}

/** Every target's verdict, in the order given. */
export async function verifyImages(targets: readonly VerifyTarget[], trust: TrustInput, options: VerifyOptions): Promise<ImageVerdict[]> {
  const cosign = new Cosign({ binary: options.cosignBinary, ...(options.env === undefined ? {} : { env: options.env }), ...(options.registryLogin === undefined ? {} : { registryLogin: options.registryLogin }), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }), ...(options.perReferenceMs === undefined ? {} : { perReferenceMs: options.perReferenceMs }) });
  // Only digest references reach cosign; the others are refused by readEvidence.
  const refs = [...new Set(targets.map((target) => target.digestRef).filter((ref) => digestOf(ref) !== undefined))];
  const checks: readonly Check[] = ["signature", "slsaprovenance1", "spdxjson"];
  const perKey = new Map<string, Map<Check, Map<string, CosignAnswer>>>();
  const batches = batchesOf(refs);
  const watches = new Map<string, HangWatch>(batches.map((batch) => [batch.registry, {}]));
  // Each key by its configured name: one key listed twice is checked twice, and found twice among the signers.
  const keys = trust.keys.map((key) => ({ ...key, id: key.configured }));
  const reader = options.signatureReader;
  const signersOf = reader === undefined || !signaturesWhereStrataReads(options.env) ? undefined : signersReader(reader, keys);
  const leftOut: LeftOut[] = [];
  for (const key of keys) {
    const perCheck = new Map<Check, Map<string, CosignAnswer>>();
    for (const check of checks) {
      const merged = new Map<string, CosignAnswer>();
      for (const batch of batches) for (const [ref, answer] of await answersFor(cosign, check, batch.refs, key, batch.registry, watches.get(batch.registry) as HangWatch, signersOf, leftOut)) merged.set(ref, answer);
      perCheck.set(check, merged);
    }
    perKey.set(key.configured, perCheck);
  }
  // What a key was left out on holds only if the image's .sig and .att still hold what was read:
  // a signature added meanwhile (another run) may be that key's. Read again, or unknown.
  if (reader !== undefined && signersOf !== undefined) {
    for (const ref of new Set(leftOut.map((entry) => entry.ref))) {
      const read = await signersOf(ref);
      const { path: repository, digest } = parseReference(ref);
      const now = await cosignTagDigests(reader, repository, digest as string).catch((error: unknown) => `could not be read again (${(error as Error).message})`);
      const moved = !("tags" in read) ? "was not read" : typeof now === "string" ? now : Object.entries(read.tags).some(([tag, held]) => now[tag] !== held) ? "changed while cosign was asked about the others" : undefined;
      if (moved === undefined) continue;
      for (const entry of leftOut.filter((candidate) => candidate.ref === ref)) {
        perKey.get(entry.key)?.get(entry.check)?.set(ref, { kind: "could not tell", detail: `its .sig or .att ${moved}, so whether ${entry.key} signed it is not known; run again` });
      }
    }
  }

  const reviews = new Map<string, Promise<ReviewAnswer>>();
  const reviewOf = (commit: string, reviewed: ReviewedTip): Promise<ReviewAnswer> => {
    const known = reviews.get(commit);
    if (known !== undefined) return known;
    const asked = isReviewedAt(trust.checkoutDir, commit, reviewed);
    reviews.set(commit, asked);
    return asked;
  };

  const missing: CosignAnswer = { kind: "could not tell", detail: "cosign was not asked (no digest reference)" };
  const verdicts: ImageVerdict[] = [];
  for (const target of targets) {
    const answers: KeyAnswers[] = trust.keys.map((key) => {
      const answer = (check: Check): CosignAnswer => perKey.get(key.configured)?.get(check)?.get(target.digestRef) ?? missing;
      return { key: key.configured, pem: key.pem, signature: answer("signature"), provenance: answer("slsaprovenance1"), sbom: answer("spdxjson") };
    });
    const read = readEvidence(target, answers);
    const reviewed = trust.reviewed;
    const { evidence, review } = reviewed === undefined ? { evidence: read, review: undefined } : await withReviewedProvenance(read, (commit) => reviewOf(commit, reviewed));
    verdicts.push(decideVerdict(target, evidence, review, trust.reviewed?.ref));
  }
  return verdicts;
}
