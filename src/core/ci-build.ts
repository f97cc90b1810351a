/**
 * CI builds (a Gerrit change and patchset): which tags a CI run may copy a
 * layer's image from, which tags belong to a change, and the stack a CI run
 * keeps its state in. Pure: the registry is asked in registry/lookups.ts.
 */
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

export interface CleanupPlan {
  /** The change's tags whose manifest no other tag points at: deleting the manifest removes just them. */
  readonly remove: readonly RepositoryTag[];
  /**
   * The change's tags whose manifest another tag also points at (a release tag, another change's).
   * A distribution v2 registry deletes manifests, not tags, so deleting one would take the other
   * tag with it: these stay. CI copies never land here (their annotation gives them a digest of
   * their own); a layer built in CI can, when a later build pushed the identical image elsewhere.
   */
  readonly keep: readonly (RepositoryTag & { readonly sharedWith: readonly string[] })[];
  /**
   * Manifests only the removed indexes reference (a multi-platform layer's per-platform images,
   * put into its repository by digest): deleted after their indexes. One that a remaining tag
   * points at, or a remaining index references, stays.
   */
  readonly children: readonly { readonly repository: string; readonly digest: string; readonly of: string }[];
}

/** Which of a change's CI tags `strata ci-clean` may delete, given every tag of the group's repositories. */
export function planCiCleanup(tags: readonly RepositoryTag[], change: number): CleanupPlan {
  // The tags outside the change, by the manifest they point at (one repository's manifest).
  const othersOn = new Map<string, string[]>();
  const changeTags: RepositoryTag[] = [];
  for (const entry of tags) {
    if (isChangeTag(entry.tag, change)) {
      changeTags.push(entry);
      continue;
    }
    const key = `${entry.repository}@${entry.digest}`;
    othersOn.set(key, [...(othersOn.get(key) ?? []), entry.tag]);
  }
  const remove: RepositoryTag[] = [];
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
  return { remove, keep, children };
}
