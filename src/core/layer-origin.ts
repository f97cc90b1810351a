/**
 * Where each layer's image comes from in this run: built by its docker.Image,
 * or adopted from the registry, which already holds the layer's tag with the
 * layer's own fingerprint (pushed by another runner, by a stack whose state
 * was lost, or by a run killed before the engine recorded it). Pure.
 *
 * The choice sticks: a layer whose build resource in this stack's state was
 * built with the same fingerprint stays built, though the registry now holds
 * exactly that image. Otherwise every build would turn into an adoption on the
 * next run, and the engine would replace one resource with another on a run
 * with no change.
 */
import { type PublishedTag, type RegistryView } from "./channel.js";
import { type StackConfig } from "./config.js";
import { type LayerFingerprint } from "./fingerprint.js";
import { type LayerTarget } from "./plan.js";

/** How a layer got its image, as recorded in the stack's `layers` output. */
export type LayerOrigin = "built" | "adopted" | "promoted";

export type LayerSource =
  | { readonly origin: "built" }
  | { readonly origin: "adopted"; readonly published: PublishedTag };

export function decideSources(
  targets: readonly LayerTarget[],
  fingerprints: ReadonlyMap<string, LayerFingerprint>,
  view: RegistryView,
  /** Layer → fingerprint of the build resource the stack's state holds for it (stack-state.ts). */
  builtHere: ReadonlyMap<string, string>,
  config: Pick<StackConfig, "push">,
): Map<string, LayerSource> {
  const sources = new Map<string, LayerSource>();
  for (const target of targets) {
    const name = target.layer.name;
    const fingerprint = fingerprints.get(name)?.fingerprint;
    const published = view.published.get(name);
    const builtHereBefore = fingerprint !== undefined && builtHere.get(name) === fingerprint;
    const adoptable = config.push && fingerprint !== undefined && published !== undefined && published.fingerprint === fingerprint;
    sources.set(name, adoptable && !builtHereBefore ? { origin: "adopted", published } : { origin: "built" });
  }
  return sources;
}
