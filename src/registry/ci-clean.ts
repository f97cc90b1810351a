/**
 * `strata ci-clean`'s reads and deletes in one channel group: the change's tags (core/ci-build.ts
 * plans them), and the images a later run of the same CI tag wrote over, found by their cosign
 * tags and deleted only when their provenance says they are this change's. The caller holds the
 * channel stack's lock around it when it deletes (engine/stack-lock.ts).
 */
import { type CleanupPlan, deletionOrder, type OrphanedImage, orphanedImages, orphanOwners, type OrphanProvenance, planCiCleanup } from "../core/ci-build.js";
import { type RegistryClient } from "./client.js";
import { deleteOrphan } from "./copy.js";
import { groupTags } from "./lookups.js";
import { provenanceStacks } from "./signatures.js";

export interface CiCleanRequest {
  readonly group: string;
  readonly change: number;
  /** The change's CI stack: the only stack an orphan's provenance may name for it to be deleted. */
  readonly ciStack: string;
  readonly dryRun: boolean;
}

export interface CiCleanOutcome {
  readonly plan: CleanupPlan;
  /** Orphans deleted (or, on a dry run, that would be), each with the signatures it deleted; and those kept, with why. */
  readonly orphans: { readonly remove: readonly OrphanedImage[]; readonly keep: readonly (OrphanedImage & { readonly why: string })[] };
  /** Orphans a tag holds again (a run pushed the same bytes since the listing): not the change's to delete. */
  readonly heldAgain: readonly { readonly repository: string; readonly subject: string; readonly holder: string }[];
  /** Orphans whose signatures another clean-up deleted since the listing. */
  readonly gone: readonly { readonly repository: string; readonly subject: string }[];
}

/**
 * Reads every tag of the group, plans, and (unless a dry run) deletes: signatures, platform images,
 * tags, then the change's orphans. `stop`, once aborted, ends it before its next request is sent
 * (with the abort's reason): a caller giving up the channel's lock knows that nothing lands after.
 * A delete that failed says whether it may still land (RegistryError.unsettled).
 */
export async function cleanChange(client: RegistryClient, request: CiCleanRequest, stop?: AbortSignal): Promise<CiCleanOutcome> {
  const tags = await groupTags(client, request.group);
  const plan = planCiCleanup(tags, request.change);
  const orphans = orphanedImages(tags);
  const provenanceOf = new Map<string, OrphanProvenance>();
  for (const orphan of orphans) {
    stop?.throwIfAborted();
    const attestations = orphan.signatures.find((entry) => entry.tag.endsWith(".att"));
    if (attestations !== undefined) provenanceOf.set(`${orphan.repository}@${orphan.subject}`, await provenanceStacks(client, orphan.repository, attestations.digest));
  }
  const owners = orphanOwners(orphans, provenanceOf, request.ciStack);
  if (request.dryRun) return { plan, orphans: owners, heldAgain: [], gone: [] };
  for (const { repository, digest } of deletionOrder(plan)) {
    stop?.throwIfAborted();
    await client.deleteManifest(repository, digest);
  }
  const removed: OrphanedImage[] = [];
  const heldAgain: { repository: string; subject: string; holder: string }[] = [];
  const gone: { repository: string; subject: string }[] = [];
  for (const orphan of owners.remove) {
    stop?.throwIfAborted();
    const done = await deleteOrphan(client, orphan, tags.filter((entry) => entry.repository === orphan.repository).map((entry) => entry.tag), stop);
    // Said as deleted: the signatures it deleted, not those another clean-up took meanwhile.
    if ("deleted" in done) removed.push({ ...orphan, signatures: orphan.signatures.filter((signature) => done.deleted.includes(signature.tag)) });
    else if ("keptFor" in done) heldAgain.push({ repository: orphan.repository, subject: orphan.subject, holder: done.keptFor });
    else gone.push({ repository: orphan.repository, subject: orphan.subject });
  }
  return { plan, orphans: { remove: removed, keep: owners.keep }, heldAgain, gone };
}
