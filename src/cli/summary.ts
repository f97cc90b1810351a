/**
 * The build summary printed after `strata up`: one row per layer, exact,
 * like Kolla's summary (built / copied / adopted / unchanged / promoted / failed / skipped).
 */
import { type AttestationEvent, type LayerEvent, type LayerTiming } from "../engine/events.js";
import { type UpLayer } from "../engine/up-flow.js";
import { CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE, IMAGE_INDEX_TYPE, PROMOTED_IMAGE_TYPE } from "../core/image-types.js";
import { digestOf, parseReference } from "../core/reference.js";
import { basename } from "node:path";
import { renderTable } from "./table.js";

export const RESULTS = ["built", "copied", "adopted", "unchanged", "promoted", "failed", "skipped"] as const;
export type LayerResult = (typeof RESULTS)[number];

/** A layer the summary reports on: what the up flow says the run was about. */
export type SummaryLayer = UpLayer;

export interface SummaryRow {
  readonly layer: string;
  readonly image: string;
  readonly result: LayerResult;
  readonly ref: string;
  readonly digest: string | null;
  readonly detail: string;
  /** Seconds its step took in this run, and for a docker.Image build its phases; null when it did no work. */
  readonly timing: StepSeconds | null;
  /** Its whole build and push output (cli/run-record.ts); only a layer built in this run has one. */
  readonly log?: string;
  /** A signing stack's layer in the registry: its cosign signature tag (`repo:sha256-<hex>.sig`, the attestations beside it in `.att`). */
  readonly signature?: string;
  /** Signed in this run (anything written), or already by an earlier one (a rerun, an image whose signature and attestations were there); set with `signature`. */
  readonly signed?: SignatureState;
  /** Its SBOM's attestation tag (`repo:sha256-<hex>.att`, the provenance beside it), when the engine reported it. */
  readonly sbom?: string;
  /** Packages in its SBOM, when the engine reported it. */
  readonly packages?: number;
  /** Of those, the ones the layer added over the image it was made on (by purl), when the engine reported it. */
  readonly packagesAdded?: number;
  /** Why the layer is not signed: the stack does not sign (`no strata:signingKey`), or the run did not get that far. */
  readonly unsigned?: string;
}

export type SignatureState = "signed" | "signed before";

export interface StepSeconds {
  readonly seconds: number;
  /** Pulling its cacheFrom images (the parent) before the build. */
  readonly pullSeconds?: number;
  readonly buildSeconds?: number;
  readonly pushSeconds?: number;
}

const secondsBetween = (from: number | undefined, to: number | undefined): number | undefined =>
  from === undefined || to === undefined ? undefined : Number(((to - from) / 1000).toFixed(1));

function stepSeconds(timing: LayerTiming | undefined): StepSeconds | null {
  const seconds = secondsBetween(timing?.startedAt, timing?.finishedAt);
  if (timing === undefined || seconds === undefined) return null;
  const pull = secondsBetween(timing.startedAt, timing.buildStartedAt);
  const build = secondsBetween(timing.buildStartedAt, timing.pushStartedAt);
  const push = secondsBetween(timing.pushStartedAt, timing.finishedAt);
  return { seconds, ...(pull === undefined ? {} : { pullSeconds: pull }), ...(build === undefined ? {} : { buildSeconds: build }), ...(push === undefined ? {} : { pushSeconds: push }) };
}

const digestPart = (digestRef: string | undefined): string | null => (digestRef === undefined || digestRef === "" ? null : digestOf(digestRef));

/** Rows in tree order (layers must come parents first). */
export function summaryRows(layers: readonly SummaryLayer[], events: ReadonlyMap<string, LayerEvent>, runError?: string): SummaryRow[] {
  const results = new Map<string, LayerResult>();
  const rows: SummaryRow[] = [];
  for (const layer of layers) {
    const event = events.get(layer.layer);
    const parentResult = layer.parent === null ? undefined : results.get(layer.parent);
    let result: LayerResult;
    let detail: string;
    if (event?.failed) {
      result = "failed";
      detail = (event.error ?? runError ?? "failed").split("\n").find((line) => line.trim() !== "")?.trim() ?? "failed";
    } else if (event === undefined || (event.digestRef === undefined && event.op !== "same")) {
      result = "skipped";
      detail = parentResult === "failed" || parentResult === "skipped" ? `parent ${layer.parent ?? ""} failed` : "not reached: the run stopped";
    } else if (event.op === "same") {
      result = "unchanged";
      detail = "";
    } else if (event.type === CI_COPY_SET_TYPE) {
      result = "copied";
      detail = "the channel's image with the same content, copied to this tag inside the registry";
    } else if (event.type === COPIED_IMAGE_TYPE) {
      result = "adopted";
      detail = "the registry already held this tag with the same content";
    } else if (event.type === IMAGE_INDEX_TYPE && event.heldAlready === true) {
      // A stack that promoted and now builds, or a fresh stack over published tags: the index its
      // platform images make is the one the tag holds.
      result = "adopted";
      detail = "the registry already held this image index under the tag (the same platform images)";
    } else if (event.type === IMAGE_INDEX_TYPE) {
      result = "built";
      detail = `image index over the layer's platforms, ${event.op === "create" ? "new" : "written again"}`;
    } else if (event.type === PROMOTED_IMAGE_TYPE) {
      result = "promoted";
      detail = event.op;
    } else {
      result = "built";
      detail = event.op === "create" ? "new" : "rebuilt";
    }
    results.set(layer.layer, result);
    const digest = digestPart(event?.digestRef ?? (result === "unchanged" ? layer.previousDigestRef : undefined));
    rows.push({ layer: layer.layer, image: layer.image, result, ref: layer.ref, digest, detail, timing: stepSeconds(event?.timing), ...signingOf(layer, result, digest, runError, event?.attestation) });
  }
  return rows;
}

/**
 * A layer's signature: where cosign's `.sig` tag is, when the stack signs and the run ended well
 * (the ImageAttestationsSet step succeeded, or the engine would have said so); else why not. A
 * failed run says it cannot tell, never that a layer is signed. What the set's step
 * reported of its image (the tags, the package count, whether this run signed it) wins over what the digest implies.
 */
function signingOf(layer: SummaryLayer, result: LayerResult, digest: string | null, runError: string | undefined, attestation: AttestationEvent | undefined): Pick<SummaryRow, "signature" | "signed" | "sbom" | "packages" | "packagesAdded" | "unsigned"> {
  if (layer.signing === undefined) return {};
  if (!layer.signing.sign) return { unsigned: layer.signing.reason };
  if (runError !== undefined || result === "failed" || result === "skipped" || digest === null || attestation?.failed === true) return { unsigned: "the run did not finish: its signatures are not known" };
  // No set's step named the image: nothing says it is signed, so the summary does not say so either.
  if (attestation === undefined) return { unsigned: "no signing step reported this image: its signature is not known" };
  const reference = parseReference(layer.ref);
  const signature = attestation.signature ?? `${reference.registry}/${reference.path}:${digest.replace(":", "-")}.sig`;
  // `same`: an earlier run's set signed this digest; signedBefore: its signature and attestations by this key were there before this run's set came to it.
  const signed: SignatureState = attestation.op === "same" || attestation.signedBefore === true ? "signed before" : "signed";
  return {
    signature, signed,
    ...(attestation.sbom === undefined ? {} : { sbom: attestation.sbom }),
    ...(attestation.packages === undefined ? {} : { packages: attestation.packages }),
    ...(attestation.packagesAdded === undefined ? {} : { packagesAdded: attestation.packagesAdded }),
  };
}

/** The summary's signing line: how many images are signed, or why none is (`not signed (no strata:signingKey)`). */
export function signingLine(rows: readonly SummaryRow[]): string | undefined {
  const signed = rows.filter((row) => row.signature !== undefined).length;
  const reasons = [...new Set(rows.flatMap((row) => (row.unsigned === undefined ? [] : [row.unsigned])))];
  if (signed === 0 && reasons.length === 0) return undefined;
  if (signed === 0) return `not signed (${reasons.join("; ")})`;
  const rest = rows.length - signed;
  return `signed and attested (SBOM, provenance): ${signed} image${signed === 1 ? "" : "s"}, signatures in each repository's sha256-<digest>.sig tag${rest === 0 ? "" : `; ${rest} not signed (${reasons.join("; ")})`}`;
}

/** A signed image's packages, and how many of them its layer added over the image it was made on: `412 (+12)`; `-` when not known. */
export function packageCell(row: Pick<SummaryRow, "packages" | "packagesAdded">): string {
  if (row.packages === undefined) return "-";
  return row.packagesAdded === undefined ? `${row.packages}` : `${row.packages} (+${row.packagesAdded})`;
}

/** The table, then the counts; a `log` column (the file's name in the run's log folder) when any layer has a log, a `packages (added)` one when any is signed. */
export function renderSummary(rows: readonly SummaryRow[]): string {
  const counts = RESULTS.map((result) => [result, rows.filter((row) => row.result === result).length] as const).filter(([, count]) => count > 0);
  const logs = rows.some((row) => row.log !== undefined);
  const packages = rows.some((row) => row.packages !== undefined);
  const headers = ["layer", "result", "ref", "digest", "detail", ...(logs ? ["log"] : []), ...(packages ? ["packages (added)"] : [])];
  const cells = rows.map((row) => [
    row.layer, row.result, row.ref, row.digest ?? "-", row.detail,
    ...(logs ? [row.log === undefined ? "-" : basename(row.log)] : []),
    ...(packages ? [packageCell(row)] : []),
  ]);
  const signing = signingLine(rows);
  return `${renderTable(headers, cells)}\n${counts.map(([result, count]) => `${count} ${result}`).join(", ")}${signing === undefined ? "" : `\n${signing}`}`;
}

export function summaryExitCode(rows: readonly SummaryRow[], runError?: string): number {
  return runError !== undefined || rows.some((row) => row.result === "failed" || row.result === "skipped") ? 1 : 0;
}
