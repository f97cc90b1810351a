/**
 * ImageAttestationsSet's check, diff and kept outputs (core/attestation-steps.ts): on
 * the same digest an image keeps the provenance facts and tag its attestations were made with, so a
 * run on a new commit leaves the set's inputs equal to its state's (the engine writes nothing); an
 * image is signed only when its digest is new to the set; an image gone from the set is a change
 * (its entry leaves the outputs) but signs nothing.
 */
import { describe, expect, it } from "vitest";
import { checkImageAttestationsSet, diffImageAttestationsSet, imagesToSign, keptAttestations } from "../../src/core/attestation-steps.js";

const digestRef = (image: string, char: string): string => `127.0.0.1:5000/g/${image}@sha256:${char.repeat(64)}`;

const facts = (layer: string, commit: string): Record<string, unknown> => ({
  layer, fingerprint: "f".repeat(64), parent: null, buildArgs: {}, platform: "linux/amd64", stack: "dev", channel: "dev",
  strataVersion: "0.1.0", engine: { name: "docker.Image (@pulumi/docker)", version: "29.0.0" },
  source: { repository: "file:///src", commit, clean: true },
});

const image = (name: string, char: string, commit: string, tag = "1.0-p0"): Record<string, unknown> => ({ digestRef: digestRef(name, char), tag, provenanceFacts: facts(name, commit) });

const inputs = (images: Record<string, Record<string, unknown>>, key = "pem"): Record<string, unknown> => ({ registry: "127.0.0.1:5000", images, signingKey: { privateKeyPem: key, password: "pw" } });

/** The set's state after signing these images (its outputs: what was signed where). */
const stateOf = (images: Record<string, Record<string, unknown>>): Record<string, unknown> => ({
  registry: "127.0.0.1:5000",
  attested: Object.fromEntries(Object.entries(images).map(([name, entry]) => [name, { digestRef: entry.digestRef, signature: `${String(entry.digestRef)}.sig`, packages: 1 }])),
});

const OLD = "c".repeat(40);
const NEW = "d".repeat(40);

describe("ImageAttestationsSet check", () => {
  it("keeps the facts and tag each image was signed with while its digest stays, and takes this run's key", () => {
    const olds = inputs({ base: image("base", "a", OLD), app: image("app", "b", OLD) });
    const news = inputs({ base: image("base", "a", NEW, "1.0-p1"), app: image("app", "e", NEW), db: image("db", "9", NEW) }, "other");
    expect(checkImageAttestationsSet(olds, news)).toEqual({
      ...news,
      // The same digest: as signed. A new digest, and an image the old inputs lack: this run's.
      images: { base: image("base", "a", OLD), app: image("app", "e", NEW), db: image("db", "9", NEW) },
    });
  });

  it("takes this run's inputs for a set without state", () => {
    const news = inputs({ base: image("base", "a", NEW) });
    expect(checkImageAttestationsSet({}, news)).toEqual(news);
  });
});

describe("ImageAttestationsSet diff", () => {
  const signedBase = stateOf({ base: image("base", "a", OLD), app: image("app", "b", OLD) });

  it("signs nothing when every digest is the one its state signed, whatever the commit, tag or key", () => {
    const news = inputs({ base: image("base", "a", NEW, "1.0-p7"), app: image("app", "b", NEW) }, "other");
    expect(imagesToSign(signedBase, news)).toEqual([]);
    expect(diffImageAttestationsSet(signedBase, news)).toBe(false);
  });

  it("signs a new digest under a name, and a new name; keeps the others' outputs", () => {
    const news = inputs({ base: image("base", "a", NEW), app: image("app", "e", NEW), db: image("db", "9", NEW) });
    expect(imagesToSign(signedBase, news)).toEqual(["app", "db"]);
    expect(diffImageAttestationsSet(signedBase, news)).toBe(true);
    expect(keptAttestations(signedBase, news)).toEqual({ base: (signedBase.attested as Record<string, unknown>).base });
  });

  it("counts an unknown digest (a preview of a layer that will build) as one to sign", () => {
    const news = inputs({ base: image("base", "a", NEW), app: { ...image("app", "b", NEW), digestRef: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" } });
    expect(imagesToSign(signedBase, news)).toEqual(["app"]);
  });

  it("is a change when an image leaves the set, which signs nothing and drops its entry", () => {
    const news = inputs({ base: image("base", "a", NEW) });
    expect(imagesToSign(signedBase, news)).toEqual([]);
    expect(diffImageAttestationsSet(signedBase, news)).toBe(true);
    expect(Object.keys(keptAttestations(signedBase, news))).toEqual(["base"]);
  });

  it("signs every image of a set without state", () => {
    expect(imagesToSign({}, inputs({ base: image("base", "a", NEW), app: image("app", "b", NEW) }))).toEqual(["app", "base"]);
  });
});
