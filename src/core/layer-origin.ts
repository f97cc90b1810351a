/**
 * Where each layer's image comes from in this run. Pure.
 * - built: by its build resource (docker.Image, or LayerImage);
 * - copied (CI runs): the registry holds the layer's fingerprint under another tag of the same
 *   repository (the channel's release tag, or an earlier patchset of the same change), so the
 *   image is copied to the CI tag inside the registry: no build, no pull, no blob push;
 * - adopted: the registry already holds the layer's own tag with its fingerprint (pushed by
 *   another runner, by a stack whose state was lost, or by a run killed before the engine
 *   recorded it), so it is recorded as it is.
 *
 * The choice sticks: a layer whose build resource in this stack's state was built with the same
 * fingerprint under the same reference stays built, though the registry now holds exactly that
 * image. Otherwise every build would turn into an adoption on the next run, and the engine would
 * replace one resource with another on a run with no change. A new reference (the next patchset's
 * CI tag) does not stick: the build resource would rebuild and push, where a copy is enough.
 */
import { type BuiltLayer, type CopySource, type PublishedTag, type RegistryView } from "./channel.js";
import { type StackConfig } from "./config.js";
import { type LayerFingerprint } from "./fingerprint.js";
import { type LayerTarget } from "./plan.js";

/** How a layer got its image, as recorded in the stack's `layers` output. */
export type LayerOrigin = "built" | "copied" | "adopted" | "promoted";

export type LayerSource =
  | { readonly origin: "built" }
  | { readonly origin: "copied"; readonly from: CopySource }
  | { readonly origin: "adopted"; readonly published: PublishedTag };

/** What the stack's state holds for a layer's build resource (stack-state.ts); defined beside the channel rules that read it. */
export type { BuiltLayer } from "./channel.js";

export function decideSources(
  targets: readonly LayerTarget[],
  fingerprints: ReadonlyMap<string, LayerFingerprint>,
  view: RegistryView,
  builtHere: ReadonlyMap<string, BuiltLayer>,
  config: Pick<StackConfig, "push" | "copyUnchanged">,
): Map<string, LayerSource> {
  const sources = new Map<string, LayerSource>();
  for (const target of targets) {
    const name = target.layer.name;
    const fingerprint = fingerprints.get(name)?.fingerprint;
    if (!config.push || fingerprint === undefined || isBuiltAsIs(target, fingerprints, builtHere)) {
      sources.set(name, { origin: "built" });
      continue;
    }
    // A copy first: a rerun of the same CI run then declares the same copy again (a no-op),
    // rather than adopting the copy it made last time.
    const from = config.copyUnchanged ? view.copySources?.get(name)?.find((candidate) => candidate.published.fingerprint === fingerprint) : undefined;
    const published = view.published.get(name);
    if (from !== undefined) sources.set(name, { origin: "copied", from });
    else if (published !== undefined && published.fingerprint === fingerprint) sources.set(name, { origin: "adopted", published });
    else sources.set(name, { origin: "built" });
  }
  return sources;
}

/** Whether this stack's state holds the layer's build resource as built at this run's fingerprint under this run's reference. */
function isBuiltAsIs(target: LayerTarget, fingerprints: ReadonlyMap<string, LayerFingerprint>, builtHere: ReadonlyMap<string, BuiltLayer>): boolean {
  const built = builtHere.get(target.layer.name);
  const fingerprint = fingerprints.get(target.layer.name)?.fingerprint;
  return built !== undefined && fingerprint !== undefined && built.fingerprint === fingerprint && built.ref === target.ref;
}

/**
 * The layers whose build resource this run leaves as it is: the state holds it built at this
 * fingerprint under this reference. How a layer is built (strata:buildNetwork) is kept from reaching
 * these, so a change of it rebuilds nothing; every other layer is built, or rebuilt, the new way.
 */
export function builtAsIs(targets: readonly LayerTarget[], fingerprints: ReadonlyMap<string, LayerFingerprint>, builtHere: ReadonlyMap<string, BuiltLayer>): Set<string> {
  return new Set(targets.filter((target) => isBuiltAsIs(target, fingerprints, builtHere)).map((target) => target.layer.name));
}

/** The layers whose image this run adopts (recorded as the registry holds it, built by another run). */
export function adoptedOf(sources: ReadonlyMap<string, LayerSource>): Set<string> {
  return new Set([...sources].filter(([, source]) => source.origin === "adopted").map(([name]) => name));
}

/**
 * Layer → the `repo@sha256:…` its image is copied from, for the layers a CI run copies. It is what
 * a copy's provenance names as its origin, and, since a copied layer's children build on the image
 * the copy is made from (pulumi/tree.ts), the parent digest a child's provenance names.
 */
export function copiedFromOf(sources: ReadonlyMap<string, LayerSource>): Map<string, string> {
  const copied = new Map<string, string>();
  for (const [name, source] of sources) if (source.origin === "copied") copied.set(name, source.from.published.digestRef);
  return copied;
}
