/**
 * What one step of a `strata:index:ImageAttestationsSet` does, from the set's state and its new
 * inputs (the provider's check, diff and update, and the run's events, read alike): which images it
 * signs, which it keeps as they were, and what the engine keeps of an unchanged image's inputs. No
 * Pulumi import; the inputs' form is pulumi/provider/image-attestations-inputs.ts.
 *
 * Only an image's digest reference decides whether it is signed: a signature is about exactly those
 * bytes, and signing the same digest again would append a second signature to its `.sig` manifest.
 * Whatever else differs on a later run (the commit, the run id, the key) is no reason to touch the
 * registry; a new digest under a name is signed beside the old one, which keeps its signature. (So a
 * new key signs the digests new to a set: new images, and images that move into another set; those
 * then carry both keys' signatures. A trust policy lists the old key too while images it alone
 * signed are promoted.)
 */

/** Name → the digest reference each image was signed at, from the set's state (its outputs). */
function signedDigests(state: Readonly<Record<string, unknown>>): Map<string, string> {
  const attested = state.attested;
  if (typeof attested !== "object" || attested === null) return new Map();
  return new Map(Object.entries(attested as Record<string, unknown>).flatMap(([name, entry]) => {
    const digestRef = (entry as { digestRef?: unknown } | null)?.digestRef;
    return typeof digestRef === "string" ? [[name, digestRef] as const] : [];
  }));
}

const imagesOf = (props: Readonly<Record<string, unknown>>): Record<string, Record<string, unknown>> => (typeof props.images === "object" && props.images !== null ? props.images as Record<string, Record<string, unknown>> : {});

/** The inputs an image keeps from when it was signed while its digest stays (the key and the login are the set's, this run's). */
const ATTESTED_AS_MADE = ["provenanceFacts", "tag"] as const;

/**
 * The inputs the engine keeps for the set (the provider's check): for an image on the same digest,
 * the provenance facts and tag its attestations were made with, not this run's. A run on a new
 * commit changes every image's `provenanceFacts.source`; were those the inputs, the set would be an
 * update on every new commit, written to the state for nothing (N=200 signed, when each image was a
 * resource: 18.5 CPU-s of the Pulumi engine against 2.0 on the same commit). They would also
 * misstate what was attested: an image is never signed again while its digest stays, so the
 * registry's provenance names the commit it was made on. A new digest, or an image the old inputs
 * do not have, takes this run's facts as they are.
 */
export function checkImageAttestationsSet(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const before = imagesOf(olds);
  const images = Object.fromEntries(Object.entries(imagesOf(news)).map(([name, image]) => {
    const old = before[name];
    if (old === undefined || typeof image !== "object" || image === null || JSON.stringify(old.digestRef) !== JSON.stringify(image.digestRef)) return [name, image];
    return [name, { ...image, ...Object.fromEntries(ATTESTED_AS_MADE.filter((key) => old[key] !== undefined).map((key) => [key, old[key]])) }];
  }));
  return { ...news, images };
}

/**
 * The images the set signs in this step: each whose digest reference is not the one its state says
 * it was signed at (a new name, a new digest; unknown during a preview counts as new). Sorted.
 */
export function imagesToSign(state: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): string[] {
  const signed = signedDigests(state);
  return Object.entries(imagesOf(news)).filter(([name, image]) => signed.get(name) !== (image as { digestRef?: unknown } | null)?.digestRef).map(([name]) => name).sort();
}

/**
 * Whether the engine's diff sees a change: an image to sign, or an image gone from the set (its
 * entry leaves the outputs; its tags stay with the image they are about). The registry and the
 * login are no reason to sign again.
 */
export function diffImageAttestationsSet(state: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): boolean {
  const names = new Set(Object.keys(imagesOf(news)));
  return imagesToSign(state, news).length > 0 || [...signedDigests(state).keys()].some((name) => !names.has(name));
}

/**
 * What the set keeps of an image from its state: its outputs, while the digest it was signed at is
 * the one declared now. The rest are signed in this step.
 */
export function keptAttestations(state: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const sign = new Set(imagesToSign(state, news));
  const attested = (typeof state.attested === "object" && state.attested !== null ? state.attested : {}) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(imagesOf(news)).filter((name) => !sign.has(name) && attested[name] !== undefined).map((name) => [name, attested[name]]));
}
