/**
 * Layer-level answers to "which images will this rebuild, and why?", from the
 * engine's per-resource operations plus fingerprints old and new. Pure, with
 * the text, JSON and Markdown renderings.
 */
import { type TagConflict } from "../core/channel.js";
import { type LayerFingerprint } from "../core/fingerprint.js";
import { type LayerTarget } from "../core/plan.js";
import { type IndexTarget } from "../core/platform-targets.js";
import { type PromotionTarget } from "../core/promotion-plan.js";

export const PLAN_STATUSES = ["unchanged", "new", "copy", "adopt", "rebuild", "retag", "removed", "blocked", "promote", "refused"] as const;
export type PlanStatus = (typeof PLAN_STATUSES)[number];

/** What the stack recorded for a layer last time (its `layers` output). */
export interface PreviousLayer {
  readonly layer: string;
  readonly image: string;
  readonly tag: string;
  readonly ref: string;
  readonly fingerprint?: string | null;
  readonly contextDigest?: string;
  readonly parent: string | null;
}

export interface PlanRow {
  readonly layer: string;
  readonly image: string;
  readonly parent: string | null;
  readonly status: PlanStatus;
  readonly reason: string;
  readonly oldRef: string | null;
  readonly newRef: string | null;
}

/** The engine's operation for each layer's image resource (`same`, `create`, `update`, `delete`, …). */
export type EngineOperations = ReadonlyMap<string, string>;

/** Layers whose image resource in the preview is a CopiedImage: the registry's image is adopted, nothing built. */
export type AdoptedLayers = ReadonlySet<string>;

export interface StatusInput {
  readonly targets: readonly LayerTarget[];
  readonly fingerprints: ReadonlyMap<string, LayerFingerprint>;
  readonly previous: Readonly<Record<string, PreviousLayer>>;
  readonly operations: EngineOperations;
  readonly conflicts: readonly TagConflict[];
  readonly adopted?: AdoptedLayers;
  /** CI runs: layers the CiCopySet copies from the channel's image (or an earlier patchset's) to the CI tag. */
  readonly copied?: ReadonlySet<string>;
  /** A multi-platform stack's layers (core/platform-targets.ts): each tag's index over its per-platform targets. */
  readonly indexes?: readonly IndexTarget[];
  /** Index tags an immutable channel would move (core/channel.ts indexConflicts): layer → why. */
  readonly blockedIndexes?: ReadonlyMap<string, string>;
}

const UNCHANGED_OPS = new Set(["same", "read"]);

export function planRows(input: StatusInput): PlanRow[] {
  const blocked = new Map(input.conflicts.map((conflict) => [conflict.layer, conflict] as const));
  const rows: PlanRow[] = [];
  for (const target of input.targets) {
    const name = target.layer.name;
    const previous = input.previous[name];
    const current = input.fingerprints.get(name);
    const op = input.operations.get(name) ?? "same";
    const base = { layer: name, image: target.layer.image, parent: target.parent ?? null, oldRef: previous?.ref ?? null, newRef: target.ref };
    const conflict = blocked.get(name);
    if (conflict !== undefined) {
      rows.push({ ...base, status: "blocked", reason: `${conflict.reason} without a version bump` });
    } else if (input.copied?.has(name) === true && !UNCHANGED_OPS.has(op)) {
      rows.push({ ...base, status: "copy", reason: "the channel holds the same content: copied to this tag inside the registry" });
    } else if (input.adopted?.has(name) === true && !UNCHANGED_OPS.has(op)) {
      rows.push({ ...base, status: "adopt", reason: "the registry holds this tag with the same content" });
    } else if (op === "create" || previous === undefined) {
      rows.push({ ...base, status: "new", reason: "not built in this stack before" });
    } else if (UNCHANGED_OPS.has(op)) {
      rows.push({ ...base, status: "unchanged", reason: "same inputs" });
    } else if (current !== undefined && previous.contextDigest !== undefined && previous.contextDigest !== current.contextDigest) {
      rows.push({ ...base, status: "rebuild", reason: "content changed" });
    } else if (target.parent !== undefined && input.previous[target.parent]?.fingerprint !== input.fingerprints.get(target.parent)?.fingerprint) {
      rows.push({ ...base, status: "rebuild", reason: "parent changed" });
    } else if (previous.tag !== target.tag) {
      rows.push({ ...base, status: "retag", reason: "version bumped" });
    } else {
      rows.push({ ...base, status: "rebuild", reason: "content changed" });
    }
  }
  // An index follows its platforms: written again when any of them changes, adopted with them.
  const rowOf = new Map(rows.map((row) => [row.layer, row] as const));
  for (const index of input.indexes ?? []) {
    const entries = index.entries.map((entry) => rowOf.get(entry.name));
    const moving = entries.filter((row) => row !== undefined && row.status !== "unchanged");
    const previous = input.previous[index.layer];
    const base = { layer: index.layer, image: index.target.layer.image, parent: null, oldRef: previous?.ref ?? null, newRef: index.target.ref };
    const indexBlocked = input.blockedIndexes?.get(index.layer);
    if (indexBlocked !== undefined) rows.push({ ...base, status: "blocked", reason: indexBlocked });
    else if (entries.some((row) => row?.status === "blocked")) rows.push({ ...base, status: "blocked", reason: "a platform's image is blocked" });
    else if (previous === undefined || input.operations.get(index.layer) === "create") rows.push({ ...base, status: "new", reason: "a new image index" });
    else if (moving.length === 0 && UNCHANGED_OPS.has(input.operations.get(index.layer) ?? "same")) rows.push({ ...base, status: "unchanged", reason: "same platform images" });
    // A stack that promoted and now builds: its platform tags hold the catalog's content, and so, once written, does the index tag.
    else if (moving.length > 0 && moving.every((row) => row?.status === "adopt")) rows.push({ ...base, status: "adopt", reason: "its platform images are adopted; the index over them is put under the tag only if the tag holds another" });
    else rows.push({ ...base, status: "rebuild", reason: `index written again: ${moving.map((row) => row?.layer).join(", ") || "its entries"} changed` });
  }
  const current = new Set([...input.targets.map((target) => target.layer.name), ...(input.indexes ?? []).map((index) => index.layer)]);
  for (const previous of Object.values(input.previous)) {
    if (!current.has(previous.layer)) {
      rows.push({ layer: previous.layer, image: previous.image, parent: previous.parent, status: "removed", reason: "no longer in the catalog or selection", oldRef: previous.ref, newRef: null });
    }
  }
  return rows;
}

/** What a promoting channel's plan is decided from: the promotion's targets, the preview, and the gate's refusals. */
export interface PromotionStatusInput {
  readonly targets: readonly PromotionTarget[];
  /** Source layer → the digests of its platform images (a multi-platform layer's index entries, `platforms` in its output). */
  readonly platformDigests: ReadonlyMap<string, readonly string[]>;
  readonly previous: Readonly<Record<string, PreviousLayer>>;
  /** The preview's operation per layer's PromotedImage. */
  readonly operations: EngineOperations;
  /** The promotion gate's paragraphs (the program's `refused: ` warnings, prefix removed), one per refused image. */
  readonly refusals: readonly string[];
}

/** The hex of a digest, or of a digest reference (`registry:port/repo@sha256:<hex>`). */
const hexOf = (digest: string): string => digest.slice(digest.lastIndexOf(":") + 1);

/** The digest (hex) of the image a gate paragraph is about: the one before its "is refused:" (core/trust-verdict.ts refusalParagraph), not another it names (a parent). */
const refusedHexOf = (paragraph: string): string | undefined => /@sha256:([0-9a-f]{64}) is refused:/.exec(paragraph)?.[1];

/**
 * A promoting channel's rows. An image the gate refuses is `refused`, its paragraphs (each about
 * the image's digest) the reason; a refusal refuses the whole promotion, so every other layer is
 * `blocked`: nothing would be copied. A refusal that names no digest of the plan is still a
 * refusal (the rows it cannot be placed on are blocked, and the exit code says so).
 */
export function promotionRows(input: PromotionStatusInput): PlanRow[] {
  const digestsOf = (target: PromotionTarget): string[] => [target.digest, ...(input.platformDigests.get(target.source.layer) ?? [])].map(hexOf);
  const refusedFor = (target: PromotionTarget): string[] => input.refusals.filter((paragraph) => {
    const hex = refusedHexOf(paragraph);
    return hex !== undefined && digestsOf(target).includes(hex);
  });
  const refusedImages = input.refusals.length;
  const placed = new Set(input.targets.flatMap(refusedFor));
  const unplaced = input.refusals.filter((paragraph) => !placed.has(paragraph));
  const rows: PlanRow[] = input.targets.map((target) => {
    const name = target.source.layer;
    const previous = input.previous[name];
    const base = { layer: name, image: target.source.image, parent: target.source.parent, oldRef: previous?.ref ?? null, newRef: target.ref };
    const own = refusedFor(target);
    if (own.length > 0) return { ...base, status: "refused", reason: own.join("\n\n") };
    if (refusedImages > 0) return { ...base, status: "blocked", reason: `the promotion is refused as a whole (${refusedImages} image${refusedImages === 1 ? "" : "s"} refused): nothing would be copied${unplaced.length === 0 ? "" : `; refused: ${unplaced.join(" ")}`}` };
    const op = input.operations.get(name) ?? "same";
    if (UNCHANGED_OPS.has(op)) return { ...base, status: "unchanged", reason: "holds the source's digest already" };
    return { ...base, status: "promote", reason: `copies ${target.source.digestRef}` };
  });
  const current = new Set(input.targets.map((target) => target.source.layer));
  for (const previous of Object.values(input.previous)) {
    if (!current.has(previous.layer)) rows.push({ layer: previous.layer, image: previous.image, parent: previous.parent, status: "removed", reason: "no longer in the source channel", oldRef: previous.ref, newRef: null });
  }
  return rows;
}

/**
 * Rows when the registry could not answer (registry/lookups.ts): nothing can be planned over an
 * unknown, so every layer is blocked; the layers it failed for say what it answered.
 */
export function registryBlockedRows(targets: readonly LayerTarget[], registry: string, failures: readonly { readonly layer: string; readonly error: { readonly answer: string } }[]): PlanRow[] {
  const failed = new Map(failures.map((failure) => [failure.layer, failure.error.answer] as const));
  const first = failures[0]?.layer;
  return targets.map((target) => {
    const answer = failed.get(target.layer.name);
    return {
      layer: target.layer.name, image: target.layer.image, parent: target.parent ?? null, oldRef: null, newRef: target.ref, status: "blocked",
      reason: answer === undefined ? `registry ${registry} did not answer for layer ${first ?? "?"}` : `registry ${registry} answered ${answer}`,
    };
  });
}

/** `rebuild: content changed`, `new`, … as users read them. */
export function statusLabel(row: PlanRow): string {
  if (row.status === "rebuild" || row.status === "retag") return `${row.status}: ${row.reason}`;
  if (row.status === "blocked") return `blocked: ${row.reason}`;
  // A refusal's paragraphs follow the plan (renderPlanText): the tree line says only that it is refused.
  if (row.status === "refused") return "refused: see below";
  return row.status;
}

function tagOf(ref: string | null): string {
  return ref === null ? "-" : ref.slice(ref.lastIndexOf(":") + 1);
}

export function planCounts(rows: readonly PlanRow[]): Record<PlanStatus, number> {
  const counts = Object.fromEntries(PLAN_STATUSES.map((status) => [status, 0])) as Record<PlanStatus, number>;
  for (const row of rows) counts[row.status] += 1;
  return counts;
}

function countsLine(rows: readonly PlanRow[]): string {
  const counts = planCounts(rows);
  return PLAN_STATUSES.filter((status) => counts[status] > 0).map((status) => `${counts[status]} ${status}`).join(", ");
}

/** The tree, one line per layer: name, status, image, old → new tag; then the counts. */
export function renderPlanText(rows: readonly PlanRow[], stack: string): string {
  const children = new Map<string | null, PlanRow[]>();
  for (const row of rows) children.set(row.parent, [...(children.get(row.parent) ?? []), row]);
  const known = new Set(rows.map((row) => row.layer));
  const lines: string[] = [`plan for stack ${stack}:`];
  const visit = (row: PlanRow, depth: number): void => {
    const indent = depth === 0 ? "" : `${"   ".repeat(depth - 1)}└─ `;
    lines.push(`${indent}${row.layer}  ${statusLabel(row)}  ${row.image} ${tagOf(row.oldRef)} → ${tagOf(row.newRef)}`);
    for (const child of children.get(row.layer) ?? []) visit(child, depth + 1);
  };
  for (const row of rows) if (row.parent === null || !known.has(row.parent)) visit(row, 0);
  lines.push(countsLine(rows));
  const refused = rows.filter((row) => row.status === "refused");
  if (refused.length > 0) lines.push("", "refused by the channel's trust policy (strata:trust): nothing would be promoted", ...refused.map((row) => `${row.layer}: ${row.reason}`));
  return lines.join("\n");
}

export function renderPlanJson(rows: readonly PlanRow[]): string {
  return JSON.stringify(rows.map((row) => ({ layer: row.layer, image: row.image, status: row.status, reason: row.reason, oldRef: row.oldRef, newRef: row.newRef })), null, 2);
}

export function renderPlanMarkdown(rows: readonly PlanRow[], stack: string): string {
  const escape = (text: string): string => text.replaceAll("|", "\\|");
  return [
    `### Strata plan for \`${stack}\``,
    "",
    "| layer | image | status | old tag | new tag |",
    "|---|---|---|---|---|",
    ...rows.map((row) => `| ${escape(row.layer)} | \`${escape(row.image)}\` | ${escape(row.status === "refused" ? `refused: ${row.reason.replaceAll("\n", " ")}` : statusLabel(row))} | ${tagOf(row.oldRef)} | ${tagOf(row.newRef)} |`),
    "",
    `**${countsLine(rows)}**`,
  ].join("\n");
}

/** Exit code of `strata plan`: 1 when anything is blocked or refused. */
export function planExitCode(rows: readonly PlanRow[]): number {
  return rows.some((row) => row.status === "blocked" || row.status === "refused") ? 1 : 0;
}

