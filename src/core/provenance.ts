/**
 * SLSA provenance for one image (issue 29): an in-toto Statement v1 whose predicate is SLSA
 * provenance v1, and the checks the promotion gate makes on a verified attestation's statement.
 * Pure: no Pulumi, no processes.
 *
 * The bytes are deterministic: the same input gives the same bytes (keys sorted at every level, no
 * clock read here), so a rerun that attests again would attest the same thing. cosign's `attest`
 * takes the predicate alone (provenancePredicateBytes) and writes the statement around it itself,
 * with the subject it signs; provenanceStatementBytes is the same statement for a reader that
 * wants it whole (and what the gate's checks read back).
 */
import { type Problem } from "./problems.js";

export const IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1";
/** The statement type cosign v2 writes around a predicate; its fields are the same as v1's. */
export const IN_TOTO_STATEMENT_V01 = "https://in-toto.io/Statement/v0.1";
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";

/**
 * Where Strata's URIs start. SLSA's builder.id and buildType are URIs a verifier compares with
 * what it trusts, not addresses it fetches; this one names the Strata project, and the version
 * after `@` (the form the SLSA GitHub generators use) lets a policy accept one Strata release or
 * any by prefix. The id is a claim, not a proof: what a reader trusts is the key that signed the
 * attestation, and the id says which build platform that key stood for.
 */
export const STRATA_URI = "https://github.com/strata/strata";
/** What the external parameters mean: one layer image built by Strata from a catalog. Versioned: a change to the parameters' meaning is a new type. */
export const STRATA_BUILD_TYPE = `${STRATA_URI}/buildtypes/layer-image/v1`;

export function builderId(strataVersion: string): string {
  return `${STRATA_URI}@v${strataVersion.replace(/^v/, "")}`;
}

/** The repository the catalog was read from, at which commit, and whether the tree matched it. */
export interface SourceState {
  /** The `origin` remote's URL, or the checkout's folder when it has none (source-info.ts). */
  readonly repository: string;
  /** HEAD's full commit id. */
  readonly commit: string;
  /** `git status --porcelain` printed nothing: the build's inputs are exactly the commit's. */
  readonly clean: boolean;
}

/** What built an image: the builder and engine, and the network of its build steps (`default`, `host`, `none`). */
export interface BuildEngine {
  readonly name: string;
  readonly version: string;
  readonly network?: string;
}

export interface ProvenanceInput {
  /** The image's repository without tag or digest (`127.0.0.1:5000/g/keystone`): the subject's name. */
  readonly image: string;
  /** `sha256:<hex>` of the image manifest (or index) the statement is about. */
  readonly digest: string;
  readonly source: SourceState;
  /** The layer's fingerprint (core/fingerprint.ts): its catalog inputs and, through its parent's, everything below it. */
  readonly fingerprint: string;
  readonly layer: string;
  /**
   * The parent image's `repository@sha256:…` as this run used it (a built image's BASE_IMAGE; for a
   * copy, the image its parent's copy was made from); absent for a root layer.
   */
  readonly parent?: string;
  /**
   * The `repository@sha256:…` this image was copied from instead of built (a CI run's unchanged
   * layer, core/layer-origin.ts); absent for an image this run built. A copy's bytes were built by
   * the run that built that image, not by this one, and its provenance says so.
   */
  readonly copiedFrom?: string;
  /**
   * The image was found in the registry under its own tag with this fingerprint, built by another
   * run (another runner, a run stopped before it was recorded), and this run recorded it: its
   * engine and run are this run's, not the builder's.
   */
  readonly adopted?: true;
  /**
   * The nearest ancestor (`repository@sha256:…`) this run adopted rather than built, when the image
   * was built on it, directly or through its parents: the image's bytes hold that one's, which no
   * trusted run says which source built. Absent when every ancestor was built (or copied).
   */
  readonly adoptedAncestor?: string;
  /**
   * The layer's own build arguments (plan.ts ownBuildArgs: its release version and source). The
   * build gets more (pulumi/tree.ts): the parent's reference and digest, which are `parent` here,
   * and the layer's fingerprint and inputs digest, which are `fingerprint`; not repeated.
   */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** `os/arch[/variant]`; for an index, its platforms joined by commas. */
  readonly platform: string;
  readonly stack: string;
  readonly channel: string;
  readonly strataVersion: string;
  /** The Strata run that built it (one per `pulumi up`). */
  readonly runId: string;
  /**
   * The engine that built it, `docker` or `strata` builder on a Docker engine of this version, and
   * the network its build steps had (strata:buildNetwork; absent in facts recorded before it existed).
   */
  readonly engine: BuildEngine;
}

/** in-toto's ResourceDescriptor as SLSA's resolvedDependencies use it: where, and the digest. */
export interface ResourceDescriptor {
  readonly uri: string;
  readonly digest: Readonly<Record<string, string>>;
  /** in-toto's field for telling descriptors apart: `copiedFrom` marks the image a copy's bytes are. */
  readonly name?: string;
}

/** A statement's subject: the image, by name and digest. */
export interface Subject {
  readonly name: string;
  readonly digest: Readonly<Record<string, string>>;
}

export interface ProvenancePredicate {
  readonly buildDefinition: {
    readonly buildType: string;
    readonly externalParameters: {
      readonly source: { readonly repository: string; readonly commit: string; readonly tree: "clean" | "dirty" };
      readonly fingerprint: string;
      readonly layer: string;
      readonly parent: string | null;
      readonly buildArgs: Readonly<Record<string, string>>;
      readonly platform: string;
      readonly stack: string;
      readonly channel: string;
    };
    /**
     * `copiedFrom`: the image was copied from this `repository@sha256:…`, not built by this run
     * (Strata decided to copy, so it is Strata's parameter, not the user's). `adopted`: it was in
     * the registry already, under its own tag with its fingerprint, built by another run; the engine
     * named is the one of the run that recorded and signed it. `adoptedAncestor`: the image was built
     * on that adopted image (directly or through its parents), so its bytes hold that one's.
     */
    readonly internalParameters: { readonly engine: BuildEngine; readonly copiedFrom?: string; readonly adopted?: true; readonly adoptedAncestor?: string };
    readonly resolvedDependencies: readonly ResourceDescriptor[];
  };
  readonly runDetails: {
    readonly builder: { readonly id: string; readonly version: Readonly<Record<string, string>> };
    readonly metadata: { readonly invocationId: string };
  };
}

export interface Statement {
  readonly _type: string;
  readonly subject: readonly Subject[];
  readonly predicateType: string;
  readonly predicate: ProvenancePredicate;
}

const SHA256 = /^sha256:([a-f0-9]{64})$/;
/** A full git object id: SHA-1 (40 hex) or SHA-256 (64 hex) repositories. */
const COMMIT = /^([a-f0-9]{40}|[a-f0-9]{64})$/;

/** `git+<repository>@<commit>`, the SPDX download-location form SLSA's examples use for a git source. */
function sourceUri(source: SourceState): string {
  return `git+${source.repository}@${source.commit}`;
}

/** An image dependency: `pkg:docker/<repository>` and its sha256. Throws on a ref that is not `<repository>@sha256:<hex>` (a caller's bug). */
function imageDependency(digestRef: string, what: string, name?: string): ResourceDescriptor {
  const digest = /@sha256:([a-f0-9]{64})$/.exec(digestRef)?.[1];
  if (digest === undefined) throw new Error(`provenance: the ${what} "${digestRef}" is not <repository>@sha256:<64 hex>`);
  return { uri: `pkg:docker/${digestRef.slice(0, digestRef.lastIndexOf("@"))}`, digest: { sha256: digest }, ...(name === undefined ? {} : { name }) };
}

/** The predicate: what built the image, from what. Throws on a digest that is not sha256:<hex> (a caller's bug, not input). */
export function provenancePredicate(input: ProvenanceInput): ProvenancePredicate {
  if (!SHA256.test(input.digest)) throw new Error(`provenance: the subject digest "${input.digest}" is not sha256:<64 hex>`);
  const dependencies: ResourceDescriptor[] = [{ uri: sourceUri(input.source), digest: { gitCommit: input.source.commit } }];
  if (input.parent !== undefined) dependencies.push(imageDependency(input.parent, "parent"));
  // A copy's bytes are that image's: it is what this run resolved, named so that no reader takes it for the parent.
  if (input.copiedFrom !== undefined) dependencies.push(imageDependency(input.copiedFrom, "image copied from", "copiedFrom"));
  return {
    buildDefinition: {
      buildType: STRATA_BUILD_TYPE,
      externalParameters: {
        // "dirty" is written out, never left away: a reader must not take a missing field for clean.
        source: { repository: input.source.repository, commit: input.source.commit, tree: input.source.clean ? "clean" : "dirty" },
        fingerprint: input.fingerprint,
        layer: input.layer,
        parent: input.parent ?? null,
        buildArgs: input.buildArgs,
        platform: input.platform,
        stack: input.stack,
        channel: input.channel,
      },
      // The network too: a step on the host's network could reach the host's own services.
      internalParameters: { engine: { name: input.engine.name, version: input.engine.version, ...(input.engine.network === undefined ? {} : { network: input.engine.network }) }, ...(input.copiedFrom === undefined ? {} : { copiedFrom: input.copiedFrom }), ...(input.adopted === true ? { adopted: true as const } : {}), ...(input.adoptedAncestor === undefined ? {} : { adoptedAncestor: input.adoptedAncestor }) },
      resolvedDependencies: dependencies,
    },
    runDetails: {
      builder: { id: builderId(input.strataVersion), version: { strata: input.strataVersion } },
      metadata: { invocationId: input.runId },
    },
  };
}

export function provenanceStatement(input: ProvenanceInput): Statement {
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name: input.image, digest: { sha256: input.digest.slice("sha256:".length) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: provenancePredicate(input),
  };
}

/** The predicate's bytes, what `cosign attest --type slsaprovenance1 --predicate <file>` reads. */
export function provenancePredicateBytes(input: ProvenanceInput): Buffer {
  return Buffer.from(`${canonicalJson(provenancePredicate(input))}\n`, "utf8");
}

export function provenanceStatementBytes(input: ProvenanceInput): Buffer {
  return Buffer.from(`${canonicalJson(provenanceStatement(input))}\n`, "utf8");
}

/** JSON with every object's keys sorted (arrays keep their order): the same value, the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
}

/** What the gate learns from a statement that passes: the commit to check against the reviewed ref. */
export interface CheckedProvenance {
  readonly commit: string;
  readonly repository: string;
  readonly layer?: string;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** A provenance statement's `predicate.buildDefinition`, or {} where it has none. */
function buildDefinitionOf(statement: unknown): Record<string, unknown> {
  const predicate = isRecord(statement) && isRecord(statement.predicate) ? statement.predicate : {};
  return isRecord(predicate.buildDefinition) ? predicate.buildDefinition : {};
}

/** A provenance statement's `predicate.buildDefinition.externalParameters`, or {} where it has none: what the gate and the checks here read the source and layer from. */
export function externalParametersOf(statement: unknown): Record<string, unknown> {
  const definition = buildDefinitionOf(statement);
  return isRecord(definition.externalParameters) ? definition.externalParameters : {};
}

/**
 * The promotion gate's checks on the statement of an attestation cosign has verified (its DSSE
 * payload, decoded): it is SLSA provenance v1, one of its subjects is exactly the image's digest,
 * it names a commit, and the tree was clean. Every failure is a problem (what failed, the fix),
 * all of them, not the first; anything missing or malformed is a failure, never a pass. Whether the
 * commit is reviewed needs the repository: the caller asks source-info.ts with `commit`.
 */
export function provenanceProblems(statement: unknown, imageDigestRef: string): { provenance?: CheckedProvenance; problems: Problem[] } {
  const file = imageDigestRef;
  const problems: Problem[] = [];
  const digest = /@(sha256:[a-f0-9]{64})$/.exec(imageDigestRef)?.[1] ?? (SHA256.test(imageDigestRef) ? imageDigestRef : undefined);
  if (digest === undefined) throw new Error(`provenanceProblems: "${imageDigestRef}" is not <repository>@sha256:<64 hex>`);
  const rebuild = "rebuild the layer from a clean checkout on the channel the promotion takes it from, so it is attested again";
  if (!isRecord(statement)) {
    return { problems: [{ file, field: "provenance", message: "the attestation's payload is not a JSON object", fix: rebuild }] };
  }
  if (statement._type !== IN_TOTO_STATEMENT_V1 && statement._type !== IN_TOTO_STATEMENT_V01) {
    problems.push({ file, field: "provenance: _type", message: `is ${JSON.stringify(statement._type)}, not an in-toto statement (${IN_TOTO_STATEMENT_V1})`, fix: rebuild });
  }
  if (statement.predicateType !== SLSA_PROVENANCE_V1) {
    problems.push({ file, field: "provenance: predicateType", message: `is ${JSON.stringify(statement.predicateType)}, not SLSA provenance v1 (${SLSA_PROVENANCE_V1})`, fix: rebuild });
  }
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const subjectDigests = subjects.map((subject) => (isRecord(subject) && isRecord(subject.digest) && typeof subject.digest.sha256 === "string" ? `sha256:${subject.digest.sha256}` : "(none)"));
  if (!subjectDigests.includes(digest)) {
    const named = subjectDigests.length === 0 ? "no subject" : `subject ${subjectDigests.join(", ")}`;
    problems.push({ file, field: "provenance: subject", message: `names ${named}, not this image's digest ${digest}: the attestation is about another image`, fix: `attest this digest (cosign attest … ${imageDigestRef}); ${rebuild}` });
  }
  const definition = buildDefinitionOf(statement);
  const external = externalParametersOf(statement);
  const source = isRecord(external.source) ? external.source : {};
  const commit = typeof source.commit === "string" && COMMIT.test(source.commit) ? source.commit : undefined;
  if (commit === undefined) {
    problems.push({ file, field: "provenance: buildDefinition.externalParameters.source.commit", message: source.commit === undefined ? "is missing: nothing says which commit built the image" : `is ${JSON.stringify(source.commit)}, not a full git commit id`, fix: `build from a git checkout; ${rebuild}` });
  }
  if (source.tree !== "clean") {
    const message = source.tree === "dirty"
      ? `records a dirty tree: the image was built from changes not in commit ${commit ?? "(unknown)"}, which no review covered`
      : `is ${source.tree === undefined ? "missing" : JSON.stringify(source.tree)}: nothing says the tree was clean`;
    // A digest is attested once: building the same bytes again from a clean checkout keeps the
    // provenance they were first attested with, so the fix is a new image, not a rebuild.
    problems.push({ file, field: "provenance: buildDefinition.externalParameters.source.tree", message, fix: source.tree === "dirty" ? "commit (or remove) the changes and have them reviewed, then publish the layer as a new image (a change to its content): a digest is attested once, so the same bytes built again from a clean checkout keep the dirty provenance they were first attested with" : `commit (or remove) the changes and have them reviewed; ${rebuild}` });
  }
  // A provenance that says its run did not build the image names that run's commit, not the one
  // the bytes came from: an image adopted from its tag could have been pushed there by anyone who
  // can push, labelled with the layer's fingerprint (which anyone who reads the catalog can compute).
  // Attested once per digest (as for a dirty tree): building the same bytes again (a cached build)
  // keeps this provenance, so the fix is a new version, which its channel's run builds and attests.
  const newImage = "publish the layer as a new version on the channel that builds it (where the promoting channels' images come from): strata bump --stack <that channel> --minor <layer>, then strata up there, then promote it along again; that channel's own run builds and attests it, while the same bytes keep the provenance they were first attested with";
  // Every provenance Strata writes has them (the engine at least): one without, or of another shape, does not say whether its run built the image.
  if (!isRecord(definition.internalParameters)) {
    problems.push({ file, field: "provenance: buildDefinition.internalParameters", message: definition.internalParameters === undefined ? "is missing: nothing says whether the run that signed the image built it" : `is ${JSON.stringify(definition.internalParameters)}, not an object: nothing says whether the run that signed the image built it`, fix: newImage });
  }
  const internal = isRecord(definition.internalParameters) ? definition.internalParameters : {};
  if (internal.adopted !== undefined && internal.adopted !== false) {
    problems.push({ file, field: "provenance: buildDefinition.internalParameters.adopted", message: "says the run that signed it did not build it: it adopted what the image's tag already held (pushed by another runner, a killed run, or anyone who can push), so no trusted run says which source built these bytes", fix: newImage });
  }
  // `adoptedAncestor` is not judged here: an image is admitted only with its parent (trust-verdict.ts
  // admitParentsFirst), so one built on an adopted image passes exactly when that image does (a
  // killed run's, which it signed itself, does; one planted under its tag does not).
  if (internal.copiedFrom !== undefined) {
    problems.push({ file, field: "provenance: buildDefinition.internalParameters.copiedFrom", message: `says the image was copied from ${typeof internal.copiedFrom === "string" ? internal.copiedFrom : JSON.stringify(internal.copiedFrom)} (a CI run's unchanged layer), not built by the run that signed it`, fix: "promote from the channel that built it, whose provenance names its build" });
  }
  if (problems.length > 0 || commit === undefined) return { problems };
  const repository = typeof source.repository === "string" ? source.repository : "";
  return { provenance: { commit, repository, ...(typeof external.layer === "string" ? { layer: external.layer } : {}) }, problems };
}

/**
 * The statement inside one line of `cosign verify-attestation --output json` (a DSSE envelope:
 * `{payloadType, payload: base64(statement), signatures}`), or a problem saying why there is none.
 */
export function statementOfEnvelope(line: string, imageDigestRef: string): { statement?: unknown; problem?: Problem } {
  const unreadable = (why: string): { problem: Problem } => ({ problem: { file: imageDigestRef, field: "provenance", message: `the verified attestation cannot be read: ${why}`, fix: "attest the image again with Strata's cosign (scripts/cosign-tools.sh path)" } });
  let envelope: unknown;
  try {
    envelope = JSON.parse(line);
  } catch {
    return unreadable("cosign's output is not JSON");
  }
  if (!isRecord(envelope) || typeof envelope.payload !== "string") return unreadable("no DSSE payload");
  try {
    return { statement: JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8")) };
  } catch {
    return unreadable("the DSSE payload is not base64 JSON");
  }
}
