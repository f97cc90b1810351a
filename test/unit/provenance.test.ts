import { describe, expect, it } from "vitest";
import {
  externalParametersOf,
  builderId,
  canonicalJson,
  provenancePredicate,
  provenanceProblems,
  provenanceStatement,
  provenanceStatementBytes,
  provenancePredicateBytes,
  statementOfEnvelope,
  type ProvenanceInput,
} from "../../src/core/provenance.js";

const digest = `sha256:${"a".repeat(64)}`;
const parentDigest = `sha256:${"b".repeat(64)}`;
const commit = "0123456789abcdef0123456789abcdef01234567";
const input: ProvenanceInput = {
  image: "127.0.0.1:5000/debian8.3-mos9.0-dev/keystone",
  digest,
  source: { repository: "https://git.example.org/strata.git", commit, clean: true },
  fingerprint: "f".repeat(64),
  layer: "keystone",
  parent: `127.0.0.1:5000/debian8.3-mos9.0-dev/base@${parentDigest}`,
  buildArgs: { STRATA_VERSION: "1.0-p0", BASE_IMAGE: `127.0.0.1:5000/debian8.3-mos9.0-dev/base@${parentDigest}` },
  platform: "linux/amd64",
  stack: "dev",
  channel: "dev",
  strataVersion: "0.1.0",
  runId: "run-20261202-1",
  engine: { name: "docker", version: "29.0.0" },
};
const ref = `${input.image}@${digest}`;

describe("provenance statement", () => {
  it("is an in-toto v1 statement of SLSA provenance v1 about the image's digest", () => {
    const statement = provenanceStatement(input);
    expect(statement._type).toBe("https://in-toto.io/Statement/v1");
    expect(statement.predicateType).toBe("https://slsa.dev/provenance/v1");
    expect(statement.subject).toEqual([{ name: input.image, digest: { sha256: "a".repeat(64) } }]);
    const { buildDefinition, runDetails } = statement.predicate;
    expect(buildDefinition.externalParameters).toEqual({
      source: { repository: input.source.repository, commit, tree: "clean" },
      fingerprint: input.fingerprint,
      layer: "keystone",
      parent: input.parent,
      buildArgs: input.buildArgs,
      platform: "linux/amd64",
      stack: "dev",
      channel: "dev",
    });
    expect(buildDefinition.internalParameters).toEqual({ engine: { name: "docker", version: "29.0.0" } });
    // The network of the build steps, when the facts carry it (strata:buildNetwork): a host-network step could reach the host's services.
    expect(provenanceStatement({ ...input, engine: { ...input.engine, network: "host" } }).predicate.buildDefinition.internalParameters).toEqual({ engine: { name: "docker", version: "29.0.0", network: "host" } });
    expect(buildDefinition.resolvedDependencies).toEqual([
      { uri: `git+https://git.example.org/strata.git@${commit}`, digest: { gitCommit: commit } },
      { uri: "pkg:docker/127.0.0.1:5000/debian8.3-mos9.0-dev/base", digest: { sha256: "b".repeat(64) } },
    ]);
    expect(runDetails).toEqual({ builder: { id: "https://github.com/strata/strata@v0.1.0", version: { strata: "0.1.0" } }, metadata: { invocationId: "run-20261202-1" } });
  });

  it("gives the same bytes for the same input, whatever the order of the build arguments", () => {
    const reordered = { ...input, buildArgs: Object.fromEntries(Object.entries(input.buildArgs).reverse()) };
    expect(provenanceStatementBytes(reordered).equals(provenanceStatementBytes(input))).toBe(true);
    expect(provenancePredicateBytes(reordered).equals(provenancePredicateBytes(input))).toBe(true);
    // Keys sorted at every level: the bytes are the canonical form of the value they parse to.
    const bytes = provenanceStatementBytes(input).toString("utf8");
    expect(bytes).toBe(`${canonicalJson(JSON.parse(bytes))}\n`);
    expect(bytes.indexOf('"_type"')).toBeLessThan(bytes.indexOf('"predicate"'));
  });

  it("records a dirty tree as dirty, never leaves it out", () => {
    const predicate = provenancePredicate({ ...input, source: { ...input.source, clean: false } });
    expect(predicate.buildDefinition.externalParameters.source.tree).toBe("dirty");
    expect(provenancePredicateBytes({ ...input, source: { ...input.source, clean: false } }).toString()).toContain('"tree":"dirty"');
  });

  it("names no parent for a root layer, and only the source as a dependency", () => {
    const { parent: _parent, ...root } = input;
    const predicate = provenancePredicate(root);
    expect(predicate.buildDefinition.externalParameters.parent).toBeNull();
    expect(predicate.buildDefinition.resolvedDependencies).toHaveLength(1);
  });

  it("refuses a subject or parent that is not a sha256 digest (a caller's bug)", () => {
    expect(() => provenanceStatement({ ...input, digest: "sha256:abc" })).toThrow(/not sha256/);
    expect(() => provenanceStatement({ ...input, parent: "127.0.0.1:5000/g/base:1.0" })).toThrow(/parent/);
  });

  it("records the image a copy was copied from, so a copy never reads as a build of this run", () => {
    const releaseDigest = `sha256:${"c".repeat(64)}`;
    const copiedFrom = `127.0.0.1:5000/debian8.3-mos9.0-dev/keystone@${releaseDigest}`;
    const predicate = provenancePredicate({ ...input, copiedFrom });
    expect(predicate.buildDefinition.internalParameters).toEqual({ engine: input.engine, copiedFrom });
    expect(predicate.buildDefinition.resolvedDependencies).toEqual([
      { uri: `git+https://git.example.org/strata.git@${commit}`, digest: { gitCommit: commit } },
      { uri: "pkg:docker/127.0.0.1:5000/debian8.3-mos9.0-dev/base", digest: { sha256: "b".repeat(64) } },
      { uri: "pkg:docker/127.0.0.1:5000/debian8.3-mos9.0-dev/keystone", digest: { sha256: "c".repeat(64) }, name: "copiedFrom" },
    ]);
    // In the bytes cosign attests, too.
    expect(provenancePredicateBytes({ ...input, copiedFrom }).toString("utf8")).toContain(`"copiedFrom":"${copiedFrom}"`);
    // A built image says nothing of a copy: not even an empty field.
    expect(provenancePredicateBytes(input).toString("utf8")).not.toContain("copiedFrom");
    expect(provenancePredicate(input).buildDefinition.resolvedDependencies.map((dependency) => dependency.name)).toEqual([undefined, undefined]);
    expect(() => provenancePredicate({ ...input, copiedFrom: "127.0.0.1:5000/g/keystone:1.0-p0" })).toThrow(/copied from/);
  });

  it("says an adopted image was built by another run: this run only recorded and signed it", () => {
    const predicate = provenancePredicate({ ...input, adopted: true });
    expect(predicate.buildDefinition.internalParameters).toEqual({ engine: input.engine, adopted: true });
    expect(provenancePredicateBytes({ ...input, adopted: true }).toString("utf8")).toContain('"adopted":true');
    expect(provenancePredicateBytes(input).toString("utf8")).not.toContain("adopted");
  });

  it("says an image built on an adopted ancestor was, naming it", () => {
    const ancestor = `127.0.0.1:5000/g/debian@sha256:${"e".repeat(64)}`;
    expect(provenancePredicate({ ...input, adoptedAncestor: ancestor }).buildDefinition.internalParameters).toEqual({ engine: input.engine, adoptedAncestor: ancestor });
    expect(provenancePredicateBytes(input).toString("utf8")).not.toContain("adoptedAncestor");
  });

  it("puts the Strata version in the builder id", () => {
    expect(builderId("0.2.0")).toBe("https://github.com/strata/strata@v0.2.0");
    expect(builderId("v0.2.0")).toBe("https://github.com/strata/strata@v0.2.0");
  });
});

describe("provenance checks of the promotion gate", () => {
  const statement = (): Record<string, unknown> => JSON.parse(provenanceStatementBytes(input).toString("utf8")) as Record<string, unknown>;

  it("passes a statement about this digest, from a clean tree, and hands back the commit", () => {
    expect(provenanceProblems(statement(), ref)).toEqual({ provenance: { commit, repository: input.source.repository, layer: "keystone" }, problems: [] });
  });

  it("accepts the v0.1 statement type cosign v2 writes around the predicate", () => {
    expect(provenanceProblems({ ...statement(), _type: "https://in-toto.io/Statement/v0.1" }, ref).problems).toEqual([]);
  });

  it("refuses a statement about another digest", () => {
    const other = provenanceStatement({ ...input, digest: `sha256:${"c".repeat(64)}` });
    const { provenance, problems } = provenanceProblems(other, ref);
    expect(provenance).toBeUndefined();
    expect(problems).toMatchObject([{ file: ref, field: "provenance: subject", message: expect.stringContaining(`sha256:${"c".repeat(64)}`) }]);
  });

  it("refuses a dirty tree, naming the commit", () => {
    const dirty = provenanceStatement({ ...input, source: { ...input.source, clean: false } });
    expect(provenanceProblems(dirty, ref).problems).toMatchObject([{ field: "provenance: buildDefinition.externalParameters.source.tree", message: expect.stringContaining(`dirty tree`), fix: expect.stringContaining("a digest is attested once") }]);
  });

  it("refuses a provenance whose run did not build the image: adopted from its tag, or copied by a CI run", () => {
    // Anyone who can push could have put the adopted bytes under the tag, labelled with the layer's fingerprint.
    const adopted = provenanceProblems(provenanceStatement({ ...input, adopted: true }), ref);
    expect(adopted.provenance).toBeUndefined();
    expect(adopted.problems).toMatchObject([{ field: "provenance: buildDefinition.internalParameters.adopted", message: expect.stringContaining("did not build it"), fix: expect.stringContaining("as a new version on the channel that builds it") }]);
    const copied = provenanceProblems(provenanceStatement({ ...input, copiedFrom: `127.0.0.1:5000/g/keystone@sha256:${"d".repeat(64)}` }), ref);
    expect(copied.provenance).toBeUndefined();
    expect(copied.problems).toMatchObject([{ field: "provenance: buildDefinition.internalParameters.copiedFrom", message: expect.stringContaining(`copied from 127.0.0.1:5000/g/keystone@sha256:${"d".repeat(64)}`) }]);
    // Written by hand, not by Strata: any value but false says so.
    const odd = statement();
    ((odd.predicate as Record<string, unknown>).buildDefinition as Record<string, unknown>).internalParameters = { engine: input.engine, adopted: "yes" };
    expect(provenanceProblems(odd, ref).problems.map((problem) => problem.field)).toEqual(["provenance: buildDefinition.internalParameters.adopted"]);
    // Of another shape (a list holding the flag, a string), or gone: nothing says the run built it.
    for (const shape of [[{ adopted: true }], "adopted", undefined]) {
      const other = statement();
      ((other.predicate as Record<string, unknown>).buildDefinition as Record<string, unknown>).internalParameters = shape;
      expect(provenanceProblems(other, ref).problems.map((problem) => problem.field)).toEqual(["provenance: buildDefinition.internalParameters"]);
    }
    // Built by its run on an adopted image: judged with its parent (trust-verdict.ts admitParentsFirst), not alone.
    const ancestor = `127.0.0.1:5000/g/debian@sha256:${"e".repeat(64)}`;
    expect(provenanceProblems(provenanceStatement({ ...input, adoptedAncestor: ancestor }), ref).problems).toEqual([]);
    // false says it was built.
    const built = statement();
    ((built.predicate as Record<string, unknown>).buildDefinition as Record<string, unknown>).internalParameters = { engine: input.engine, adopted: false };
    expect(provenanceProblems(built, ref).problems).toEqual([]);
  });

  it("refuses, all at once, a statement with no commit, no tree state and the wrong predicate type", () => {
    const bare = { _type: "https://in-toto.io/Statement/v1", predicateType: "https://spdx.dev/Document", subject: [{ name: input.image, digest: { sha256: "a".repeat(64) } }], predicate: {} };
    const fields = provenanceProblems(bare, ref).problems.map((problem) => problem.field);
    expect(fields).toEqual(["provenance: predicateType", "provenance: buildDefinition.externalParameters.source.commit", "provenance: buildDefinition.externalParameters.source.tree", "provenance: buildDefinition.internalParameters"]);
    for (const problem of provenanceProblems(bare, ref).problems) expect(problem.fix).not.toBe("");
  });

  it("reads the source only where SLSA provenance v1 puts it (predicate.buildDefinition.externalParameters), for the checks here and the gate's alike", () => {
    const moved = statement();
    const predicate = moved.predicate as Record<string, unknown>;
    const definition = predicate.buildDefinition as Record<string, unknown>;
    // The same parameters one level up (where no v1 reader looks) record nothing.
    predicate.externalParameters = definition.externalParameters;
    delete definition.externalParameters;
    expect(externalParametersOf(moved)).toEqual({});
    expect(provenanceProblems(moved, ref).problems.map((problem) => problem.field)).toEqual(["provenance: buildDefinition.externalParameters.source.commit", "provenance: buildDefinition.externalParameters.source.tree"]);
    // With no buildDefinition at all, the predicate itself is not read in its place.
    delete predicate.buildDefinition;
    expect(externalParametersOf(moved)).toEqual({});
    expect(externalParametersOf(statement())).toMatchObject({ source: { commit, tree: "clean" }, layer: "keystone" });
  });

  it("refuses a commit that is not a full id, and a payload that is not an object", () => {
    const short = statement();
    ((((short.predicate as Record<string, unknown>).buildDefinition as Record<string, unknown>).externalParameters as Record<string, unknown>).source as Record<string, unknown>).commit = "0123abc";
    expect(provenanceProblems(short, ref).problems).toMatchObject([{ message: expect.stringContaining("not a full git commit id") }]);
    expect(provenanceProblems("text", ref).problems).toHaveLength(1);
    expect(provenanceProblems(null, ref).problems).toHaveLength(1);
  });

  it("reads the statement out of cosign's DSSE envelope, and says why it cannot", () => {
    const envelope = JSON.stringify({ payloadType: "application/vnd.in-toto+json", payload: provenanceStatementBytes(input).toString("base64"), signatures: [{ sig: "x" }] });
    expect(statementOfEnvelope(envelope, ref).statement).toEqual(statement());
    expect(statementOfEnvelope("not json", ref).problem?.message).toContain("not JSON");
    expect(statementOfEnvelope("{}", ref).problem?.message).toContain("no DSSE payload");
  });
});
