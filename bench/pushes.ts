/**
 * What a run pushed, measured in the registry rather than assumed: every tag of a side's group with
 * its manifest digest, read before and after the run; the tags that are new or hold another digest
 * after it are what the run pushed. A push of identical bytes (bake re-pushes every target's manifest
 * on a no-op) moves no tag and is not counted: the count is of tags written with new content.
 */
import { groupTags } from "../src/registry/lookups.js";
import { RegistryClient } from "../src/registry/client.js";

/** `repository:tag` → manifest digest. */
export type TagDigests = ReadonlyMap<string, string>;

/** Every tag under `group/` in the registry, with its digest. */
export async function groupDigests(registry: string, group: string): Promise<TagDigests> {
  const tags = await groupTags(new RegistryClient({ registry, scheme: "http" }), group);
  return new Map(tags.map((entry) => [`${entry.repository}:${entry.tag}`, entry.digest]));
}

/** The tags that are new in `after`, or hold another digest than in `before`. Pure. */
export function tagsWritten(before: TagDigests, after: TagDigests): number {
  let written = 0;
  for (const [tag, digest] of after) if (before.get(tag) !== digest) written++;
  return written;
}
