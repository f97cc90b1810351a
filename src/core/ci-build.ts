/**
 * CI builds (a Gerrit change and patchset): which tags a CI run may copy a
 * layer's image from, which tags belong to a change, and the stack a CI run
 * keeps its state in. Pure: the registry is asked in registry/lookups.ts.
 */
import { attestationTag, cosignTagSubject, isCosignTag, signatureTag } from "./cosign-format.js";
import { type CiBuild, parseTag } from "./version.js";

/** The manifest annotation a CI copy carries: the tag it was copied to (it makes the copy's digest its own). */
export const COPY_TAG_ANNOTATION = "org.strata.tag";

/** The tags a CI run may copy from, in order of preference, among a repository's tags. */
export function copyCandidateTags(target: { readonly tag: string; readonly releaseTag: string }, repositoryTags: readonly string[]): string[] {
  const current = parseTag(target.tag);
  if (current?.ci === undefined) return [];
  const { change } = current.ci;
  const sameVersion = (tag: string): boolean => {
    const parsed = parseTag(tag);
    return parsed?.ci?.change === change && tag !== target.tag && tag.startsWith(`${target.releaseTag}-`);
  };
  // The channel's own tag first (what every unchanged layer copies), then the change's other
  // patchsets, newest first (a new patchset shares most of what the previous one built).
  const patchsets = repositoryTags.filter(sameVersion).sort((a, b) => (parseTag(b)?.ci?.patchset ?? 0) - (parseTag(a)?.ci?.patchset ?? 0));
  return [target.releaseTag, ...patchsets];
}

/** Whether a tag is one of this change's CI tags (any patchset, any version). */
export function isChangeTag(tag: string, change: number): boolean {
  return parseTag(tag)?.ci?.change === change;
}

/**
 * The stack a CI run of `channelStack` keeps its state in, when the change comes from the CI
 * environment: one per change, so CI runs never touch the channel's own state, and two changes
 * never wait for each other's lock. Patchsets of one change share it (and so their builds).
 */
export function ciStackName(channelStack: string, ci: CiBuild): string {
  return `${channelStack}-ci-${ci.change}`;
}

/** One tag in a registry repository, with the manifest digest it points at. */
export interface RepositoryTag {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  /** When the tag holds an image index: the manifests it references (in the same repository). */
  readonly children?: readonly string[];
}

/** A tag `strata ci-clean` deletes; a cosign `.sig`/`.att` tag says which image digest it is about. */
export type RemovedTag = RepositoryTag & {
  /** For a cosign signature or attestation tag: the digest of the deleted manifest it signs (in the same repository). */
  readonly signatureOf?: string;
};

export interface CleanupPlan {
  /**
   * The change's tags whose manifest no other tag points at: deleting the manifest removes just them.
   * First come the cosign `.sig`/`.att` tags of every manifest the plan deletes (these entries and
   * the children below), each with `signatureOf`: deleted before the images they are about, so a
   * clean-up that stops halfway leaves no signature whose image has gone, which a second run could
   * no longer tell from a signature that is not the change's.
   */
  readonly remove: readonly RemovedTag[];
  /**
   * The change's tags whose manifest another tag also points at (a release tag, another change's),
   * or an index outside the change references (a release index's platform image).
   * A distribution v2 registry deletes manifests, not tags, so deleting one would take the other
   * tag with it: these stay. CI copies never land here (their annotation gives them a digest of
   * their own); a layer built in CI can, when a later build pushed the identical image elsewhere.
   */
  readonly keep: readonly (RepositoryTag & { readonly sharedWith: readonly string[] })[];
  /**
   * Manifests only the removed indexes reference (a multi-platform layer's per-platform images,
   * put into its repository by digest): deleted before their indexes (deletionOrder). One that a
   * remaining tag points at, or a remaining index references, stays.
   */
  readonly children: readonly { readonly repository: string; readonly digest: string; readonly of: string }[];
}

/**
 * The manifests a clean-up deletes, in the order it deletes them: the signatures (so none is left
 * whose image has gone), then the per-platform images only the change's indexes referenced, then
 * the change's tags (the images no tag holds go their own way: registry/copy.ts deleteOrphan).
 * Stopped halfway, the change's tags are still there, so running it again finds what is left; an
 * index deleted before its platform images would leave them untagged, where no later run looks.
 */
export function deletionOrder(plan: CleanupPlan): { readonly repository: string; readonly digest: string }[] {
  const signatures = plan.remove.filter((entry) => entry.signatureOf !== undefined);
  const tags = plan.remove.filter((entry) => entry.signatureOf === undefined);
  return [...signatures, ...plan.children, ...tags].map(({ repository, digest }) => ({ repository, digest }));
}

/** Which of a change's CI tags `strata ci-clean` may delete, given every tag of the group's repositories. */
export function planCiCleanup(tags: readonly RepositoryTag[], change: number): CleanupPlan {
  // The tags outside the change, by the manifest they point at (one repository's manifest), and the
  // indexes outside the change by the per-platform manifests they reference: a change's tag on a
  // release index's platform image (a single-platform rebuild of the same bytes) is not the
  // change's to delete, nor are that image's `.sig`/`.att`.
  const changeTags = tags.filter((entry) => isChangeTag(entry.tag, change));
  const othersOn = holdersIn(tags.filter((entry) => !isChangeTag(entry.tag, change)));
  const remove: RemovedTag[] = [];
  const keep: (RepositoryTag & { sharedWith: string[] })[] = [];
  for (const entry of changeTags) {
    const sharedWith = othersOn.get(`${entry.repository}@${entry.digest}`);
    if (sharedWith === undefined) remove.push(entry);
    else keep.push({ ...entry, sharedWith });
  }
  // What the tags that stay still need: their manifests and, for indexes, the manifests they reference.
  const removed = new Set(remove);
  const stillNeeded = new Set(tags.filter((entry) => !removed.has(entry)).flatMap((entry) => [entry.digest, ...(entry.children ?? [])].map((digest) => `${entry.repository}@${digest}`)));
  const children: { repository: string; digest: string; of: string }[] = [];
  for (const entry of remove) {
    for (const digest of entry.children ?? []) {
      const key = `${entry.repository}@${digest}`;
      if (stillNeeded.has(key)) continue;
      // Listed once, under the first removed index that references it.
      stillNeeded.add(key);
      children.push({ repository: entry.repository, digest, of: entry.tag });
    }
  }
  return { remove: [...signaturesOf([...remove, ...children], tags, removed, keep), ...remove], keep, children };
}

/** cosign names the signatures of sha256 digests only; a digest of another form has none to look for. */
const SHA256 = /^sha256:[a-f0-9]{64}$/;

/**
 * The cosign `.sig`/`.att` tags, in the same repository, of the manifests the plan deletes. Only
 * those: a signature of a digest the plan keeps (a release image's, a kept CI tag's, another
 * change's) stays, and so does one whose image no tag points at (not the change's to judge). A
 * signature manifest another remaining tag also points at is kept, with that tag, like any tag.
 */
function signaturesOf(
  deleted: readonly { readonly repository: string; readonly digest: string }[],
  tags: readonly RepositoryTag[],
  removed: ReadonlySet<RepositoryTag>,
  keep: (RepositoryTag & { sharedWith: string[] })[],
): RemovedTag[] {
  // `repository:tag` of each signature tag → the deleted digest it is about.
  const wanted = new Map<string, string>();
  for (const { repository, digest } of deleted) {
    if (!SHA256.test(digest)) continue;
    for (const tag of [signatureTag(digest), attestationTag(digest)]) wanted.set(`${repository}:${tag}`, digest);
  }
  const found = tags.filter((entry) => wanted.has(`${entry.repository}:${entry.tag}`));
  const going = new Set<RepositoryTag>([...removed, ...found]);
  // Who else holds each manifest: the tags that stay (none of them a signature tag found here).
  const staying = holdersIn(tags.filter((other) => !going.has(other)));
  const signatures: RemovedTag[] = [];
  for (const entry of found) {
    const sharedWith = staying.get(`${entry.repository}@${entry.digest}`) ?? [];
    if (sharedWith.length > 0) keep.push({ ...entry, sharedWith });
    else signatures.push({ ...entry, signatureOf: wanted.get(`${entry.repository}:${entry.tag}`) as string });
  }
  return signatures;
}

/**
 * Who holds each manifest (`repository@digest`): the tags pointing at it, and the tags whose index
 * lists it (as a message names them). A delete by digest would take such a tag with it, or break
 * its index. One table for the plan, the orphans and the registry's reads again before a delete.
 */
export function holdersIn(tags: readonly RepositoryTag[]): Map<string, string[]> {
  const holders = new Map<string, string[]>();
  const holds = (key: string, holder: string): void => {
    holders.set(key, [...(holders.get(key) ?? []), holder]);
  };
  for (const entry of tags) {
    holds(`${entry.repository}@${entry.digest}`, entry.tag);
    for (const child of entry.children ?? []) holds(`${entry.repository}@${child}`, `${entry.tag} (an image of its index)`);
  }
  return holders;
}

/**
 * The tags of `others` that hold `entry`'s manifest in its repository, or hold an index that lists
 * it: a cosign tag made to point at a release's platform image is not the change's to delete.
 */
function holdersOf(entry: RepositoryTag, others: readonly RepositoryTag[]): string[] {
  return holdersIn(others.filter((other) => other !== entry)).get(`${entry.repository}@${entry.digest}`) ?? [];
}

/**
 * An image no tag holds any more, with its cosign tags: a later run of the same CI tag (a recheck
 * whose build gave other bytes, a layer copied where one was built) wrote the tag over it, so
 * the plan, which follows tags, never reaches its `.sig`/`.att`. Whose it is, only its provenance
 * can say (`orphanOwners`).
 */
export interface OrphanedImage {
  readonly repository: string;
  /** The image the cosign tags are about. */
  readonly subject: string;
  /** Its `.sig`/`.att` (and `.sbom`) tags. */
  readonly signatures: readonly RepositoryTag[];
  /** Other tags holding one of those signature manifests (deleting it would take them): then it is kept. */
  readonly sharedWith?: readonly string[];
}

/**
 * The images whose cosign tags remain while no other tag of their repository holds them, nor any
 * index there lists them (the plan's own signatures are about images a change tag holds).
 */
export function orphanedImages(tags: readonly RepositoryTag[]): OrphanedImage[] {
  // Held by any tag, cosign's too: a signature manifest is its tag's, never an orphan of its own
  // (an `.att` written about a release's `.sig` manifest must not make that manifest deletable).
  const held = new Set(tags.flatMap((entry) => [entry.digest, ...(entry.children ?? [])].map((digest) => `${entry.repository}@${digest}`)));
  const orphans = new Map<string, { repository: string; subject: string; signatures: RepositoryTag[] }>();
  for (const entry of tags) {
    if (!isCosignTag(entry.tag)) continue;
    const subject = cosignTagSubject(entry.tag);
    const key = `${entry.repository}@${subject}`;
    if (held.has(key)) continue;
    const orphan = orphans.get(key) ?? { repository: entry.repository, subject, signatures: [] };
    orphan.signatures.push(entry);
    orphans.set(key, orphan);
  }
  return [...orphans.values()].map((orphan) => {
    const sharedWith = [...new Set(orphan.signatures.flatMap((signature) => holdersOf(signature, tags.filter((other) => !orphan.signatures.includes(other)))))];
    return sharedWith.length === 0 ? orphan : { ...orphan, sharedWith };
  });
}

/** What an orphaned image's `.att` says of the runs that attested it: each provenance's stack, or why it cannot be read. */
export type OrphanProvenance = { readonly stacks: readonly string[] } | { readonly unreadable: string };

/**
 * Which orphaned images are the change's: those whose every provenance statement names the
 * change's CI stack (one run of the change attested it). Anything else is kept, and says why: no
 * `.att`, a provenance naming another stack (a release copy a promotion deleted, another change),
 * or one that cannot be read. A clean-up deletes only what it can show is the change's.
 */
export function orphanOwners(orphans: readonly OrphanedImage[], provenanceOf: ReadonlyMap<string, OrphanProvenance>, ciStack: string): { remove: OrphanedImage[]; keep: (OrphanedImage & { why: string })[] } {
  const remove: OrphanedImage[] = [];
  const keep: (OrphanedImage & { why: string })[] = [];
  for (const orphan of orphans) {
    const found = provenanceOf.get(`${orphan.repository}@${orphan.subject}`);
    if (orphan.sharedWith !== undefined) keep.push({ ...orphan, why: `its signature manifests are also under ${orphan.sharedWith.join(", ")}` });
    else if (found === undefined) keep.push({ ...orphan, why: "no provenance attestation says which run made it" });
    else if ("unreadable" in found) keep.push({ ...orphan, why: `its provenance cannot be read (${found.unreadable})` });
    else if (found.stacks.length === 0) keep.push({ ...orphan, why: "its .att holds no provenance statement" });
    else if (found.stacks.some((stack) => stack !== ciStack)) keep.push({ ...orphan, why: `its provenance names stack ${[...new Set(found.stacks.filter((stack) => stack !== ciStack))].join(", ")}` });
    else remove.push(orphan);
  }
  return { remove, keep };
}
