/**
 * The verdict on one image against a trust policy (issue 29, items 5 and 7): from what cosign
 * answered (per trusted key: the signature, the SLSA provenance and the SPDX attestations) and what
 * git answered (is the commit reviewed), whether the image is admitted, and every reason it is not,
 * each a sentence and a fix. Pure: engine/image-verify.ts runs cosign and git and hands the answers
 * here; the promotion gate and `strata verify` both read these verdicts.
 *
 * cosign checks that a key signed a payload; it does not check what the payload says. So Strata
 * reads each verified payload itself: a signature counts only if its payload names exactly this
 * digest, an attestation only if its in-toto subject is exactly this digest (an attestation moved
 * under another image's `.att` tag verifies with cosign, and says nothing about that image). And an
 * attestation counts only if Strata itself finds the key's signature over the payload it reads:
 * cosign prints the envelope as stored, and its Go decoder may have verified another payload in the
 * same bytes than the one JSON.parse reads (cosign-format.ts DSSE_FIELDS).
 *
 * Fails closed: an answer Strata cannot read, or "could not tell" from cosign or git, is a failure,
 * never an admission and never "unsigned but fine".
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { dsseSignedBy, readDsseEnvelope, readSimpleSigning, readStatementHead, SPDX_DOCUMENT } from "./cosign-format.js";
import { catalogLayerName, platformSlug } from "./platforms.js";
import { type Problem } from "./problems.js";
import { externalParametersOf, provenanceProblems, SLSA_PROVENANCE_V1 } from "./provenance.js";

/** What the verifier is asked about one image. */
export interface VerifyTarget {
  readonly layer: string;
  /** "linux/amd64" for a per-platform image of a multi-platform layer; undefined for a single-platform layer or the index itself. */
  readonly platform?: string;
  /** `registry/group/image@sha256:…` — always a digest, never a tag. */
  readonly digestRef: string;
  /**
   * The repository (`group/image[/os-arch]`) the image is admitted into, where it is not the one
   * it is read from: a promotion's target repository. The provenance's subject must name the same
   * image there (its group aside). Absent: the digest reference's own.
   */
  readonly publishedAs?: string;
}

export interface VerifyFailure {
  readonly what: string;
  readonly fix: string;
}

export interface ImageVerdict extends VerifyTarget {
  readonly admitted: boolean;
  /** The configured path of a trusted key whose signature verified, if any: the key of the provenance the commit is read from when it signed too, else the first in the policy's order. */
  readonly signedBy?: string;
  /** The provenance's commit and whether the tree was clean, when the provenance verified. */
  readonly commit?: string;
  readonly clean?: boolean;
  readonly reviewed: "yes" | "no" | "could not tell" | "not checked";
  /** Packages in the verified SPDX SBOM (without the image's own document package), when it verified. */
  readonly packages?: number;
  /**
   * The images it was built on (`repository@sha256:…`), as its provenances that pass name them
   * (one, but for a digest attested twice); absent when none names one (a root layer's).
   */
  readonly parentDigestRefs?: readonly string[];
  /** Every reason it is refused, each a sentence and a fix; empty when admitted. */
  readonly failures: readonly VerifyFailure[];
}

/**
 * One cosign verification's answer (engine/cosign.ts VerifyResult has this shape): exit 0 with
 * what it printed, one JSON document a line; or why not.
 */
export type CosignAnswer =
  | { readonly kind: "verified"; readonly payloads: readonly string[] }
  | { readonly kind: "no signature" | "mismatch"; readonly detail: string }
  /** `timedOut`: cosign was stopped for taking longer than its limit (engine/image-verify.ts stops asking a registry where two calls in a row were). */
  | { readonly kind: "could not tell"; readonly detail: string; readonly timedOut?: true };

/** git's answer to "is this commit an ancestor of the reviewed ref's commit" (engine/source-info.ts isReviewedAt). */
export type ReviewAnswer =
  | { readonly kind: "reviewed" }
  | { readonly kind: "not reviewed"; readonly detail: string }
  | { readonly kind: "could not tell"; readonly detail: string };

/** What cosign answered for one image with one trusted key. */
export interface KeyAnswers {
  /** The key's path as configured (`keys/ci.pub`). */
  readonly key: string;
  /** The key's PEM public half: each attestation's payload is held to it here too, not to cosign's word alone. */
  readonly pem: string;
  readonly signature: CosignAnswer;
  readonly provenance: CosignAnswer;
  readonly sbom: CosignAnswer;
}

/** What the attestations say, before git is asked about the commit. */
export interface Evidence {
  /** Every trusted key whose signature over this digest verified, in the policy's order (absent when none). */
  readonly signers?: readonly string[];
  /**
   * The provenance (by a trusted key, about this digest) the verdict rests on: of those that pass
   * every check, the one with the least commit, then by a key that signed the digest too, then by
   * key, so the order of keys and of the .att's layers never picks it; else the first read.
   */
  readonly provenance?: { readonly attestedBy: string; readonly commit?: string; readonly clean?: boolean; readonly passes: boolean };
  /**
   * The other commits that passing provenances name (least first), each with a key that attested one
   * (one that signed the digest too, when there is one):
   * the image was built from each, so it is reviewed when any of them is (withReviewedProvenance).
   */
  readonly otherProvenanceCommits?: readonly { readonly attestedBy: string; readonly commit: string }[];
  /** What every provenance that passes says the image was built on: undefined when none names a parent (a root layer). */
  readonly parentDigestRefs?: readonly string[];
  readonly packages?: number;
  readonly failures: readonly VerifyFailure[];
}

const SHA256_REF = /@(sha256:[a-f0-9]{64})$/;

/** `sha256:<hex>` of a digest reference; undefined when the reference has none. */
export function digestOf(digestRef: string): string | undefined {
  return SHA256_REF.exec(digestRef)?.[1];
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** Each JSON document cosign printed, arrays flattened (`cosign verify` prints one array per image). */
function documentsOf(payloads: readonly string[]): unknown[] {
  return payloads.flatMap((line) => {
    try {
      const parsed: unknown = JSON.parse(line);
      return Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
    } catch {
      return [];
    }
  });
}

/** Whether one of the verified simple-signing payloads names exactly `digest`. */
export function signatureNames(payloads: readonly string[], digest: string): boolean {
  return documentsOf(payloads).some((document) => readSimpleSigning(Buffer.from(JSON.stringify(document), "utf8"))?.digest === digest);
}

/**
 * The statements of the verified DSSE envelopes whose payload `publicKey` signed, whose predicate
 * type is `predicateType` and whose subject includes exactly `digest`; and how many envelopes were
 * left unread for not being signed by it (or not having exactly cosign's fields), which cosign
 * nevertheless said it verified, of those that claim this digest or whose claim cannot be read.
 */
export function statementsAbout(payloads: readonly string[], digest: string, predicateType: string, publicKey: KeyObject | undefined): { statements: unknown[]; unsigned: number } {
  let unsigned = 0;
  const statements = documentsOf(payloads).flatMap((document) => {
    const envelope = readDsseEnvelope(Buffer.from(JSON.stringify(document), "utf8"));
    if (envelope === undefined || publicKey === undefined || !dsseSignedBy(envelope, { publicKey })) {
      // Counted against this digest unless it names another (a batch's payloads go to each of its digests).
      const claimed = envelope === undefined ? undefined : readStatementHead(envelope.payload);
      if (claimed === undefined || claimed.subjectDigests.includes(digest)) unsigned++;
      return [];
    }
    const head = readStatementHead(envelope.payload);
    if (head === undefined || head.predicateType !== predicateType || !head.subjectDigests.includes(digest)) return [];
    try {
      return [JSON.parse(envelope.payload.toString("utf8")) as unknown];
    } catch {
      return [];
    }
  });
  return { statements, unsigned };
}

/**
 * Whether one of the envelopes cosign printed holds a statement about several subjects: in a batch
 * its answer cannot say which image's .att it came from, and it would be read for each digest it
 * names (another image's attestation deciding this one's verdict), so the batch is asked image by
 * image. Strata writes one subject a statement; BuildKit and cosign attest do too.
 */
export function namesSeveralSubjects(payloads: readonly string[]): boolean {
  return documentsOf(payloads).some((document) => {
    const envelope = readDsseEnvelope(Buffer.from(JSON.stringify(document), "utf8"));
    const head = envelope === undefined ? undefined : readStatementHead(envelope.payload);
    return head !== undefined && head.subjectDigests.length > 1;
  });
}

/** A trusted key's PEM as a key object; undefined when it is none (the trust policy refuses such a file before anything is verified). */
function publicKeyOf(pem: string): KeyObject | undefined {
  try {
    return createPublicKey(pem);
  } catch {
    return undefined;
  }
}

/**
 * Packages an SPDX statement lists, without the image's own package (the document describes it);
 * undefined when it is no SPDX 2 document (its version, its name, its packages: what any SPDX 2
 * document has, so an empty stand-in signed by a trusted key is not counted as an SBOM).
 */
export function spdxPackageCount(statement: unknown): number | undefined {
  const predicate = isRecord(statement) ? statement.predicate : undefined;
  if (!isRecord(predicate) || predicate.SPDXID !== "SPDXRef-DOCUMENT" || !Array.isArray(predicate.packages)) return undefined;
  if (typeof predicate.spdxVersion !== "string" || !/^SPDX-2\.\d+$/.test(predicate.spdxVersion) || typeof predicate.name !== "string" || predicate.name === "") return undefined;
  const described = new Set(Array.isArray(predicate.relationships)
    ? predicate.relationships.flatMap((relation) => (isRecord(relation) && relation.spdxElementId === "SPDXRef-DOCUMENT" && relation.relationshipType === "DESCRIBES" && typeof relation.relatedSpdxElement === "string" ? [relation.relatedSpdxElement] : []))
    : []);
  return predicate.packages.filter((entry) => !(isRecord(entry) && typeof entry.SPDXID === "string" && described.has(entry.SPDXID))).length;
}

/** The source commit and tree a provenance statement records, as far as it records them. */
function provenanceSource(statement: unknown): { commit?: string; clean?: boolean } {
  const external = externalParametersOf(statement);
  const source = isRecord(external.source) ? external.source : {};
  return {
    ...(typeof source.commit === "string" && /^([a-f0-9]{40}|[a-f0-9]{64})$/.test(source.commit) ? { commit: source.commit } : {}),
    ...(source.tree === "clean" ? { clean: true } : source.tree === "dirty" ? { clean: false } : {}),
  };
}

/**
 * Whether a provenance is about the image it is verified as: the layer (and, for a platform's image,
 * the platform) the stack's outputs say the digest is. A trusted key attests every layer's images
 * and every version of each; without this, whoever can point a layer's output at a digest (any run
 * of the channel the promotion comes from, key or none) could have another layer's image, or
 * another platform's, admitted under this layer's name. The names are the provenance's own
 * (`keystone`, `keystone@linux-arm64` for a platform's image: core/platforms.ts), and so is the
 * platform (an index's lists its platforms, and is not checked against one).
 */
function targetProblems(statement: unknown, target: VerifyTarget, digest: string): Problem[] {
  const external = externalParametersOf(statement);
  const fix = `point the layer at its own image: the stack the promotion comes from names, for ${target.layer}, an image built as another layer, image or platform; run strata up on that stack (it declares each layer's own image), then promote again`;
  const problems: Problem[] = [];
  const layer = external.layer;
  // A platform's image is named after its layer in the provenance, whichever repository holds it.
  const sameLayer = typeof layer === "string" && (target.platform === undefined ? layer === target.layer : catalogLayerName(layer) === catalogLayerName(target.layer));
  if (!sameLayer) {
    problems.push({ file: target.digestRef, field: "provenance: buildDefinition.externalParameters.layer", message: typeof layer === "string" ? `says the image was built as ${layer}, not ${target.layer}` : "does not say which layer the image was built as", fix });
  }
  // And the image: the layer name comes from the same stack outputs as the repository a promotion
  // copies into, so a source output naming nova's image "keystone" would pass the layer check.
  const published = target.publishedAs ?? target.digestRef.slice(target.digestRef.indexOf("/") + 1, target.digestRef.lastIndexOf("@"));
  // `group/image[/os-arch]` → `image[/os-arch]`; undefined when there is no group and image to compare.
  const imageOf = (repositoryPath: string): string | undefined => {
    const parts = repositoryPath.split("/");
    return parts.length < 2 || parts.some((part) => part === "") ? undefined : parts.slice(1).join("/");
  };
  const subjects = isRecord(statement) && Array.isArray(statement.subject) ? statement.subject : [];
  const names = subjects.flatMap((subject) => (isRecord(subject) && isRecord(subject.digest) && `sha256:${String(subject.digest.sha256)}` === digest && typeof subject.name === "string" ? [subject.name] : []));
  const expected = imageOf(published);
  // A subject's name is `registry/group/image…`: the image is what follows the registry and group.
  if (expected === undefined || !names.some((name) => imageOf(name.slice(name.indexOf("/") + 1)) === expected)) {
    problems.push({ file: target.digestRef, field: "provenance: subject", message: `names the image ${names.join(", ") || "(no name)"}, not ${expected ?? "(none)"} (${published}), which this image is ${target.publishedAs === undefined ? "published as" : "promoted to"}`, fix });
  }
  // A platform's image (its provenance names keystone@linux-arm64) verified as no platform's: only
  // in its own repository (group/keystone/linux-arm64), never where the layer's index goes.
  if (target.platform === undefined && typeof layer === "string" && catalogLayerName(layer) !== layer && !(expected ?? "").endsWith(`/${platformSlug(String(external.platform))}`)) {
    problems.push({ file: target.digestRef, field: "provenance: buildDefinition.externalParameters.platform", message: `says the image is the ${String(external.platform)} image of ${catalogLayerName(layer)}, not an image for ${published} (where the layer's index goes)`, fix });
  }
  if (target.platform !== undefined && external.platform !== target.platform) {
    problems.push({ file: target.digestRef, field: "provenance: buildDefinition.externalParameters.platform", message: typeof external.platform === "string" ? `says the image was built for ${external.platform}, not ${target.platform}` : `does not say which platform the image was built for (this is the ${target.platform} image)`, fix });
  }
  return problems;
}

/**
 * A stack signs each digest once (its set's state says so), so an image whose `.sig`/`.att` were
 * removed or damaged after it was signed is signed again only when its set is made anew.
 */
const REBUILD = "sign and attest it on the channel it comes from (a stack with strata:signingKey builds and signs it; an image that stack signed before, whose .sig or .att was removed or damaged since, is signed again when its strata:index:ImageAttestationsSet is replaced: pulumi up --stack <that stack> --replace <the set's URN, from pulumi stack --show-urns>), then promote again";
const COULD_NOT_TELL_FIX = "make sure the registry answers and cosign runs (scripts/cosign-tools.sh path), then run again: nothing is admitted that could not be verified";

/**
 * The failure for a check no key verified, from every key's answer: "could not tell" wins (Strata
 * does not know the image is unsigned), then a signature by another key, then none at all.
 */
function unverified(answers: readonly { key: string; answer: CosignAnswer }[], what: string, keys: string): VerifyFailure {
  const detail = (kind: CosignAnswer["kind"]): string => answers.flatMap(({ answer }) => (answer.kind === kind && answer.kind !== "verified" ? [answer.detail] : []))[0] ?? "";
  if (answers.some(({ answer }) => answer.kind === "could not tell")) return { what: `could not verify its ${what}: ${detail("could not tell")}`, fix: COULD_NOT_TELL_FIX };
  if (answers.some(({ answer }) => answer.kind === "mismatch")) {
    // cosign's mismatch: signed by another key, or (for an attestation) about another digest; its words say which.
    return { what: `its ${what} does not verify with a trusted key (${keys}) for this digest: ${detail("mismatch")}`, fix: `sign and attest this digest with the key whose public half strata:trust.keys lists, or add the signer's .pub to strata:trust.keys if that key is trusted; ${REBUILD}` };
  }
  return { what: `it has no ${what} by a trusted key (${keys})`, fix: REBUILD };
}

/** Reads cosign's answers for one image: which key signed it, the provenance it carries, its SBOM's package count, and what failed. */
export function readEvidence(target: VerifyTarget, answers: readonly KeyAnswers[]): Evidence {
  const digest = digestOf(target.digestRef);
  if (digest === undefined) return { failures: [{ what: `"${target.digestRef}" is not a digest reference (repository@sha256:…)`, fix: "verify an image by its digest: a tag can move between the check and the copy" }] };
  const keys = answers.map((answer) => answer.key).join(", ") || "none";
  const failures: VerifyFailure[] = [];

  // Signature: a trusted key's verified payload naming exactly this digest.
  const signers = answers.filter((answer) => answer.signature.kind === "verified" && signatureNames(answer.signature.payloads, digest)).map((answer) => answer.key);
  if (signers.length === 0) {
    const signatureAnswers = answers.map(({ key, signature }) => ({
      key,
      // Verified, but no payload names this digest: a signature about another image.
      answer: signature.kind === "verified" ? { kind: "mismatch" as const, detail: `the verified signatures name other digests, not ${digest}` } : signature,
    }));
    failures.push(unverified(signatureAnswers, "signature", keys));
  }

  // Attestations: the statements of each key's verified envelopes whose payload that key signed (statementsAbout).
  const publicKeys = new Map(answers.map((answer) => [answer.key, publicKeyOf(answer.pem)]));
  const trusted = (answer: KeyAnswers, check: "provenance" | "sbom", predicateType: string): { statements: unknown[]; unsigned: number } => {
    const cosignAnswer = answer[check];
    return cosignAnswer.kind === "verified" ? statementsAbout(cosignAnswer.payloads, digest, predicateType, publicKeys.get(answer.key)) : { statements: [], unsigned: 0 };
  };
  /** When no statement about this digest was read though cosign verified some: why, as a failure. */
  const unread = (read: readonly { unsigned: number }[], what: string): VerifyFailure =>
    read.some((entry) => entry.unsigned > 0)
      ? { what: `its ${what} holds a payload that the trusted key cosign verified it with did not sign (an envelope with fields besides payloadType, payload and signatures, as cosign writes it, or another payload in place of the signed one): what it says is not read`, fix: `find out who wrote this digest's .att tag (cosign tree <image>); attest this digest anew; ${REBUILD}` }
      : { what: `its ${what}s by a trusted key name another subject, not this digest ${digest}: the attestation is about another image`, fix: `attest this digest; ${REBUILD}` };

  // Provenance: verified statements about exactly this digest; of those that pass every check the
  // least by commit, then one by a key that signed the digest (so the signer shown with the commit
  // attested it, decideVerdict), then by key (whatever order cosign printed them in), else the first read.
  const provenanceRead = answers.map((answer) => ({ key: answer.key, ...trusted(answer, "provenance", SLSA_PROVENANCE_V1) }));
  const candidates = provenanceRead.flatMap(({ key, statements }) => statements.map((statement) => ({ key, statement, checked: { problems: [...provenanceProblems(statement, target.digestRef).problems, ...targetProblems(statement, target, digest)] } })));
  const passing = candidates
    .filter((candidate) => candidate.checked.problems.length === 0)
    .map((candidate) => ({ ...candidate, commit: provenanceSource(candidate.statement).commit ?? "", unsigned: signers.includes(candidate.key) ? 0 : 1 }))
    .sort((a, b) => compareText(a.commit, b.commit) || a.unsigned - b.unsigned || compareText(a.key, b.key));
  const chosen = passing[0] ?? candidates[0];
  // Every other commit the passing provenances name, once, with the first key (in that order: one that signed the digest first) that attested it.
  const keyByCommit = new Map<string, string>();
  for (const candidate of passing) if (candidate.commit !== "" && !keyByCommit.has(candidate.commit)) keyByCommit.set(candidate.commit, candidate.key);
  keyByCommit.delete(passing[0]?.commit ?? "");
  const otherProvenanceCommits = keyByCommit.size === 0 ? undefined : [...keyByCommit].map(([commit, attestedBy]) => ({ attestedBy, commit }));
  let provenance: Evidence["provenance"];
  let parentDigestRefs: string[] | undefined;
  if (chosen === undefined) {
    const someVerified = answers.some(({ provenance: answer }) => answer.kind === "verified");
    failures.push(someVerified ? unread(provenanceRead, "SLSA provenance attestation") : unverified(answers.map(({ key, provenance: answer }) => ({ key, answer })), "SLSA provenance attestation", keys));
  } else {
    provenance = { attestedBy: chosen.key, ...provenanceSource(chosen.statement), passes: chosen.checked.problems.length === 0 };
    // Every parent any passing provenance names: the image is judged with all of them
    // (admitParentsFirst), not with whichever a key's or the .att's order put first; it is a root
    // only when none names one. One that is not a string is kept as written, and matches no image.
    const named = candidates
      .filter((candidate) => candidate.checked.problems.length === 0)
      .map((candidate) => externalParametersOf(candidate.statement).parent)
      .filter((parent) => parent !== null && parent !== undefined)
      .map((parent) => (typeof parent === "string" ? parent : JSON.stringify(parent)));
    if (named.length > 0) parentDigestRefs = [...new Set(named)];
    for (const problem of chosen.checked.problems) failures.push({ what: `its provenance ${problem.field?.replace(/^provenance: ?/, "") ?? ""} ${problem.message}`.replace(/\s+/g, " "), fix: problem.fix });
    // A trusted key whose provenance check could not be made may hold a provenance naming another
    // parent, which the image would be judged with (admitParentsFirst): not knowing it, the image is
    // not admitted on the others' alone.
    for (const { key, provenance: answer } of answers) {
      if (answer.kind !== "could not tell") continue;
      failures.push({ what: `could not check its SLSA provenance attestations with ${key} (${answer.detail}), and one by that key could name an image it was built on that is not verified`, fix: "make sure the registry and cosign answer, then run again" });
    }
  }

  // SBOM: a verified SPDX statement about exactly this digest.
  const sbomRead = answers.map((answer) => trusted(answer, "sbom", SPDX_DOCUMENT));
  const counts = sbomRead.flatMap(({ statements }) => statements.map(spdxPackageCount));
  const packages = counts.find((count) => count !== undefined);
  if (packages === undefined) {
    const verified = answers.some(({ sbom }) => sbom.kind === "verified");
    if (!verified) failures.push(unverified(answers.map(({ key, sbom: answer }) => ({ key, answer })), "SPDX SBOM attestation", keys));
    else if (counts.length > 0) failures.push({ what: "its SPDX SBOM attestation holds no SPDX document", fix: `attest this digest's SBOM; ${REBUILD}` });
    else failures.push(unread(sbomRead, "SPDX SBOM attestation"));
  }

  return { ...(signers.length === 0 ? {} : { signers }), ...(provenance === undefined ? {} : { provenance }), ...(otherProvenanceCommits === undefined ? {} : { otherProvenanceCommits }), ...(parentDigestRefs === undefined ? {} : { parentDigestRefs }), ...(packages === undefined ? {} : { packages }), failures };
}

/** Code-unit order, the same on every machine. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The evidence resting on the provenance whose commit is reviewed, when the one it rests on is not
 * and another passing provenance's commit is (the same bytes built from two commits, each attested
 * by a trusted key): "a provenance whose commit is reviewed" is there. `reviewOf` answers for a
 * commit (git, cached by the caller). Returns the evidence and the review answer to decide with.
 */
export async function withReviewedProvenance(evidence: Evidence, reviewOf: (commit: string) => Promise<ReviewAnswer>): Promise<{ evidence: Evidence; review: ReviewAnswer | undefined }> {
  const commit = evidence.provenance?.commit;
  if (commit === undefined || evidence.provenance === undefined) return { evidence, review: undefined };
  const review = await reviewOf(commit);
  if (review.kind === "reviewed" || evidence.otherProvenanceCommits === undefined) return { evidence, review };
  const resting = (other: { attestedBy: string; commit: string }): Evidence => ({ ...evidence, provenance: { ...(evidence.provenance as NonNullable<Evidence["provenance"]>), attestedBy: other.attestedBy, commit: other.commit } });
  // None reviewed: refused, on a commit git could not answer for when there is one (its fix, a fetch,
  // may admit the image), else on the least commit.
  let refused = { evidence, review };
  for (const other of evidence.otherProvenanceCommits) {
    const otherReview = await reviewOf(other.commit);
    if (otherReview.kind === "reviewed") return { evidence: resting(other), review: otherReview };
    if (otherReview.kind === "could not tell" && refused.review.kind === "not reviewed") refused = { evidence: resting(other), review: otherReview };
  }
  return refused;
}

/**
 * The verdict: the evidence and git's answer about the provenance's commit (undefined when no
 * reviewed ref is checked, or there is no commit to ask about). Admitted only when nothing failed
 * and every part is present: a signature, a provenance that passes (clean, reviewed) and an SBOM.
 */
export function decideVerdict(target: VerifyTarget, evidence: Evidence, review: ReviewAnswer | undefined, reviewedRef: string | undefined): ImageVerdict {
  const failures = [...evidence.failures];
  const commit = evidence.provenance?.commit;
  let reviewed: ImageVerdict["reviewed"];
  if (reviewedRef === undefined) reviewed = "not checked";
  else if (commit === undefined || review === undefined) reviewed = "could not tell";
  else if (review.kind === "reviewed") reviewed = "yes";
  else if (review.kind === "not reviewed") {
    reviewed = "no";
    failures.push({ what: `its provenance names commit ${commit}, which is not in the reviewed ref ${reviewedRef} (${review.detail})`, fix: `have the commit reviewed and merged into ${reviewedRef}, rebuild from there, then promote again` });
  } else {
    reviewed = "could not tell";
    failures.push({ what: `cannot tell whether commit ${commit} is reviewed: ${review.detail}`, fix: `fetch ${reviewedRef} and the commit into the catalog's git checkout (git fetch; a shallow clone: git fetch --unshallow), then run again` });
  }
  // The key shown as the signer is the one whose provenance the commit is read from when that key
  // signed the digest too (readEvidence prefers such a provenance), so a row's "signed by" and
  // "commit" speak for one key; else the first signer in the policy's order.
  const provenanceKey = evidence.provenance?.attestedBy;
  const signedBy = provenanceKey !== undefined && evidence.signers?.includes(provenanceKey) === true ? provenanceKey : evidence.signers?.[0];
  const complete = signedBy !== undefined && evidence.provenance?.passes === true && evidence.packages !== undefined && (reviewed === "yes" || reviewed === "not checked");
  if (failures.length === 0 && !complete) failures.push({ what: "the verification is incomplete (a part gave no answer)", fix: COULD_NOT_TELL_FIX });
  return {
    ...target,
    admitted: failures.length === 0,
    ...(signedBy === undefined ? {} : { signedBy }),
    ...(commit === undefined ? {} : { commit }),
    ...(evidence.provenance?.clean === undefined ? {} : { clean: evidence.provenance.clean }),
    reviewed,
    ...(evidence.packages === undefined ? {} : { packages: evidence.packages }),
    ...(evidence.parentDigestRefs === undefined ? {} : { parentDigestRefs: evidence.parentDigestRefs }),
    failures,
  };
}

/**
 * An image is admitted only with the images it was built on: their bytes are in it, so it can be
 * trusted no more than they are. An admitted verdict stays admitted when its provenances name no
 * parent (a root layer), or when every parent they name is a trusted digest: one with a verdict of
 * the same set that stays admitted so (a promotion and `strata verify` verify a layer's ancestors
 * with it), from the roots up. Each verdict is judged with its own provenances' parents, though
 * the same digest is verified twice (a platform's image in its own repository and in its index's).
 * A parent whose signature, provenance or SBOM is refused here (one its run adopted, planted under
 * its tag; unsigned; dirty; an index inside an index, whose images nothing verified), one not among
 * them — in `unverified` (digests the caller could not hand to the verifier: an image or index the
 * gate could not read, and the images such an index names), or not — the image itself, or a chain
 * that leads back to it, refuses it, and so each image built on it; one failure for each reason,
 * naming its parents. `unverified` only chooses what a refusal says. What the caller checks beside
 * the trust evidence (a tag moved, a manifest gone while its signatures stay) does not pass on: the
 * child's bytes are what was verified. Pure; linear in the verdicts and their parents.
 */
export function admitParentsFirst(verdicts: readonly ImageVerdict[], unverified: ReadonlySet<string> = new Set()): ImageVerdict[] {
  const digests = verdicts.map((verdict) => digestOf(verdict.digestRef));
  const parentsOf = verdicts.map((verdict) => verdict.parentDigestRefs?.map((parent) => ({ parent, digest: digestOf(parent) })));
  // Trusted from the roots up: a verdict is grounded once each parent it names is a trusted digest,
  // and its digest is then trusted. `waiting`: digest → the verdicts that name it and wait for it.
  const trusted = new Set<string>();
  const waiting = new Map<string, number[]>();
  const untrustedParents = verdicts.map(() => 0);
  const ready: number[] = [];
  verdicts.forEach((verdict, at) => {
    const own = digests[at];
    const parents = parentsOf[at];
    if (!verdict.admitted || own === undefined) return;
    if (parents === undefined) return void ready.push(at);
    // None named, one that is no digest, or the image itself: never grounded.
    if (parents.length === 0 || parents.some(({ digest }) => digest === undefined || digest === own)) return;
    const distinct = new Set(parents.map(({ digest }) => digest as string));
    untrustedParents[at] = distinct.size;
    for (const digest of distinct) {
      const children = waiting.get(digest);
      if (children === undefined) waiting.set(digest, [at]);
      else children.push(at);
    }
  });
  const grounded = new Set<number>();
  for (let at = ready.pop(); at !== undefined; at = ready.pop()) {
    grounded.add(at);
    const own = digests[at] as string;
    if (trusted.has(own)) continue;
    trusted.add(own);
    for (const child of waiting.get(own) ?? []) if (--(untrustedParents[child] as number) === 0) ready.push(child);
  }

  const verifiedHere = new Set(digests.filter((digest): digest is string => digest !== undefined));
  return verdicts.map((verdict, at) => {
    if (!verdict.admitted || grounded.has(at)) return verdict;
    const own = digests[at];
    const parents = parentsOf[at] ?? [];
    if (parents.length === 0) {
      return { ...verdict, admitted: false, failures: [...verdict.failures, { what: "its provenance names the image it was built on as nothing (an empty list): nothing says that image is trusted", fix: "attest the image anew with Strata, whose provenance names its parent, then promote or verify again" }] };
    }
    const untrusted = parents.filter(({ digest }) => digest === undefined || digest === own || !trusted.has(digest));
    const reason = ({ digest }: { digest: string | undefined }): "itself" | "refused" | "unverified" | "absent" =>
      digest !== undefined && digest === own ? "itself" : digest !== undefined && verifiedHere.has(digest) ? "refused" : digest !== undefined && unverified.has(digest) ? "unverified" : "absent";
    const failures: VerifyFailure[] = (["itself", "refused", "unverified", "absent"] as const).flatMap((kind) => {
      const named = untrusted.filter((entry) => reason(entry) === kind).map(({ parent }) => parent).join(" and ");
      if (named === "") return [];
      if (kind === "itself") return [{ what: `its provenance says it was built on ${named}, itself: a provenance no build writes`, fix: "attest the image anew with Strata, then promote or verify again" }];
      if (kind === "refused") return [{ what: `it was built on ${named}, which is refused here: that image's bytes are in this one, so it is not trusted either`, fix: `fix what refuses ${named} (its own paragraph), then promote or verify again` }];
      if (kind === "unverified") return [{ what: `it was built on ${named}, which could not be verified here (its own paragraph says why): that image's bytes are in this one`, fix: `fix what kept ${named} from being verified (its own paragraph), then promote or verify again` }];
      return [{ what: `it was built on ${named}, which is not among the images verified with it (its parent layer's image is now another; in a CI run, the release image its parent was copied from; or an image that could not be read names it): nothing here says that image is trusted, and its bytes are in this one`, fix: `when no other paragraph says an image could not be read, publish the layer as a new version built on its parent's current image (strata bump --stack <the channel that builds it> --minor ${verdict.layer}, then strata up there), then promote it along again` }];
    });
    return { ...verdict, admitted: false, failures: [...verdict.failures, ...failures] };
  });
}

/**
 * An index that an index names: the gate and `strata verify` look one level into an index (its
 * platform images), so the images under an inner one would go unverified, while a copy takes them
 * all. Strata's own indexes name platform images only; such an index is refused, not looked into.
 */
export const NESTED_INDEX = "it is an image index that another index names: Strata verifies the images an index names, not those of an index inside it, so what is under it would be copied and pulled unverified";
export const NESTED_INDEX_FIX = "publish the layer as an index whose entries are platform images (what Strata's strata:index:ImageIndex puts together), then promote or verify again";

/** One paragraph about a refused image: which (layer, platform, digest), every failure and its fix. */
export function refusalParagraph(verdict: ImageVerdict): string {
  const which = `${verdict.layer}${verdict.platform === undefined ? "" : ` (${verdict.platform})`} ${verdict.digestRef}`;
  // Failures with the same fix (cosign missing fails all three checks alike) share it: said once.
  const groups: { whats: string[]; fix: string }[] = [];
  for (const failure of verdict.failures) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last.fix === failure.fix) last.whats.push(failure.what.replace(/\.$/, ""));
    else groups.push({ whats: [failure.what.replace(/\.$/, "")], fix: failure.fix });
  }
  return `${which} is refused: ${groups.map((group) => `${group.whats.join("; ")}; fix: ${group.fix.replace(/\.$/, "")}.`).join(" ")}`;
}
