/**
 * ImageAttestations' check (provider/image-attestations-inputs.ts): on the same digest the engine
 * keeps the provenance facts and tag the attestations were made with, so a run on a new commit
 * leaves every unchanged resource's inputs equal to its state's (the engine writes no state for
 * it); a new digest, or a resource without state, takes this run's inputs.
 */
import { describe, expect, it } from "vitest";
import { checkImageAttestations } from "../../src/pulumi/provider/image-attestations-inputs.js";

const DIGEST_REF = `127.0.0.1:5000/g/app@sha256:${"a".repeat(64)}`;

const facts = (commit: string): Record<string, unknown> => ({
  layer: "app", fingerprint: "f".repeat(64), parent: null, buildArgs: {}, platform: "linux/amd64", stack: "dev", channel: "dev",
  strataVersion: "0.1.0", engine: { name: "docker.Image (@pulumi/docker)", version: "29.0.0" },
  source: { repository: "file:///src", commit, clean: true },
});

const inputs = (commit: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  registry: "127.0.0.1:5000", digestRef: DIGEST_REF, tag: "1.0-p0", provenanceFacts: facts(commit), signingKey: { privateKeyPem: "pem", password: "pw" }, ...extra,
});

describe("ImageAttestations check", () => {
  it("keeps the facts and tag it was signed with while the digest stays, and takes this run's key", () => {
    const olds = inputs("c".repeat(40));
    const news = inputs("d".repeat(40), { tag: "1.0-p1", signingKey: { privateKeyPem: "other", password: "other" } });
    expect(checkImageAttestations(olds, news)).toEqual({ ...news, provenanceFacts: olds.provenanceFacts, tag: "1.0-p0" });
  });

  it("takes this run's inputs for a new digest (a replacement signs with them) and for a resource without state", () => {
    const news = inputs("d".repeat(40), { digestRef: `127.0.0.1:5000/g/app@sha256:${"e".repeat(64)}` });
    expect(checkImageAttestations(inputs("c".repeat(40)), news)).toEqual(news);
    expect(checkImageAttestations({}, inputs("d".repeat(40)))).toEqual(inputs("d".repeat(40)));
  });
});
