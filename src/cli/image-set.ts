/**
 * The image set of a run: every layer's reference and digest, as JSON and as
 * a plain list of pinned references (`ref@digest`, one per line), which is
 * what a deployment test of a CI build consumes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type CiBuild } from "../core/version.js";
import { type SummaryRow } from "./summary.js";

export interface ImageSetImage {
  readonly layer: string;
  readonly image: string;
  readonly ref: string;
  readonly digest: string;
  /** How this run got it: built, copied, adopted, unchanged, promoted. */
  readonly result: string;
}

export interface ImageSet {
  readonly stack: string;
  readonly channelStack: string;
  readonly group: string;
  readonly change: number | null;
  readonly patchset: number | null;
  readonly images: readonly ImageSetImage[];
}

/** From a successful run's summary rows (every row has a digest). */
export function imageSet(run: { stack: string; channelStack: string; group: string; ci?: CiBuild }, rows: readonly SummaryRow[]): ImageSet {
  return {
    stack: run.stack,
    channelStack: run.channelStack,
    group: run.group,
    change: run.ci?.change ?? null,
    patchset: run.ci?.patchset ?? null,
    images: rows.map((row) => {
      if (row.digest === null) throw new Error(`layer ${row.layer} has no digest`);
      return { layer: row.layer, image: row.image, ref: row.ref, digest: row.digest, result: row.result };
    }),
  };
}

/** `ref@digest`, one per layer in tree order: pulls exactly these images whatever the tags do later. */
export function renderImageList(set: ImageSet): string {
  return set.images.map((image) => `${image.ref}@${image.digest}\n`).join("");
}

export function writeImageSet(dir: string, set: ImageSet): { json: string; text: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, "images.json");
  const text = path.join(dir, "images.txt");
  writeFileSync(json, `${JSON.stringify(set, null, 2)}\n`);
  writeFileSync(text, renderImageList(set));
  return { json, text };
}
