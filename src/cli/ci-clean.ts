/**
 * What `strata ci-clean` prints: the JSON its callers script against, or a table of every tag
 * deleted, kept or gone, and the summary lines. Pure.
 */
import { provenanceLast } from "../registry/copy.js";
import { type CiCleanOutcome } from "../registry/ci-clean.js";
import { renderTable } from "./table.js";

export interface CiCleanRun {
  readonly change: number;
  readonly group: string;
  readonly registry: string;
  readonly ciStack: string;
  readonly dryRun: boolean;
  /** Whether the change's CI stack was removed (always false on a dry run). */
  readonly stackRemoved: boolean;
  /** Why it was not removed, when it is there and was not (the channel's lock could not be released). */
  readonly stackKept?: string;
}

export function renderCiCleanJson(outcome: CiCleanOutcome, run: CiCleanRun): string {
  const { plan, orphans, heldAgain, gone } = outcome;
  return JSON.stringify({
    change: run.change, group: run.group, dryRun: run.dryRun, removed: plan.remove, kept: plan.keep, indexEntriesRemoved: plan.children,
    orphansRemoved: orphans.remove, orphansKept: orphans.keep, orphansHeldAgain: heldAgain, orphansGone: gone, stack: run.ciStack, stackRemoved: run.stackRemoved,
  }, null, 2);
}

export function renderCiCleanText(outcome: CiCleanOutcome, run: CiCleanRun): string {
  const { plan, orphans, heldAgain, gone } = outcome;
  const deleted = run.dryRun ? "would delete" : "deleted";
  const rows = [
    ...plan.remove.map((entry) => [entry.repository, entry.tag, deleted, entry.digest]),
    ...plan.keep.map((entry) => [entry.repository, entry.tag, `kept: same manifest as ${entry.sharedWith.join(", ")}`, entry.digest]),
    ...plan.children.map((child) => [child.repository, `(in index ${child.of})`, deleted, child.digest]),
    // As deleteOrphan deletes them: the image, then its signatures, the provenance last.
    ...orphans.remove.flatMap((orphan) => [
      [orphan.repository, "(no tag: written over by a later run)", deleted, orphan.subject],
      ...provenanceLast(orphan.signatures).map((entry) => [entry.repository, entry.tag, `${deleted}: its image no tag holds, attested by ${run.ciStack}`, entry.digest]),
    ]),
    ...heldAgain.map((held) => [held.repository, "(no tag when listed)", `kept: ${held.holder} holds it again`, held.subject]),
    ...gone.map((orphan) => [orphan.repository, "(no tag when listed)", "gone: another clean-up deleted its signatures", orphan.subject]),
  ];
  const lines = [rows.length === 0 ? `no CI tags of change ${run.change} in ${run.registry}/${run.group}` : renderTable(["repository", "tag", "action", "digest"], rows)];
  if (orphans.keep.length > 0) lines.push(`kept the signatures of ${orphans.keep.length} image(s) no tag holds, not shown to be this change's (--json lists them and why)`);
  const tagsDeleted = plan.remove.length + orphans.remove.reduce((count, orphan) => count + orphan.signatures.length, 0);
  lines.push(`${run.dryRun ? "dry run: nothing deleted" : `${tagsDeleted} tag(s) deleted`}; stack ${run.ciStack}: ${run.stackRemoved ? "removed" : run.dryRun ? "left as it is" : run.stackKept ?? "not present"}`);
  if (!run.dryRun && plan.remove.length + orphans.remove.length > 0) lines.push("the layers' blobs stay on disk until the registry's garbage collection runs: scripts/services.sh gc");
  return `${lines.join("\n")}\n`;
}
