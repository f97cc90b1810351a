/** `strata refs`: layer, ref and digest from the `layers` stack output piped in. */
import { InputError } from "../core/problems.js";
import { digestOf } from "../core/reference.js";

export interface RefRow {
  readonly layer: string;
  readonly ref: string;
  readonly digest: string;
}

/** Rows from the `layers` stack output (a map of layer name to LayerOutput). */
export function refRows(stackOutputJson: string): RefRow[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stackOutputJson);
  } catch {
    throw new InputError([{ file: "standard input", message: "not JSON", fix: "pipe in `pulumi stack output --json layers`" }]);
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new InputError([{ file: "standard input", message: "not a map of layers", fix: "pipe in `pulumi stack output --json layers`" }]);
  }
  return Object.values(parsed as Record<string, { layer?: unknown; ref?: unknown; digestRef?: unknown }>).map((layer) => ({
    layer: String(layer.layer),
    ref: String(layer.ref),
    digest: digestOf(String(layer.digestRef)),
  }));
}
