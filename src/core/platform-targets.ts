/**
 * A multi-platform stack's targets (`strata:platforms` with two or more entries). Pure.
 *
 * Each catalog layer becomes one build target per platform and one image index:
 * - the per-platform target `<layer>@<os>-<arch>` builds FROM its parent's image for the same
 *   platform, and is pushed to its own repository `<group>/<image>/<os>-<arch>` under the same
 *   tag, so the image's own repository lists only tags that hold indexes;
 * - the index (`strata:index:ImageIndex`, named by the layer) puts those per-platform manifests
 *   into `<group>/<image>` by digest and an OCI image index over them under the tag.
 * Every rule that works on targets (fingerprints, look-ups, the immutable refusal, adoption, CI
 * copies, placement, plan statuses, the summary) then works per platform unchanged, because a
 * per-platform target is an ordinary target with its own name, repository and platform.
 * A stack with one platform keeps its layers' names and repositories as they always were.
 *
 * Apart from platforms.ts (what a platform is called, the platform table), which the stack config
 * reads to check `strata:platforms`: the config comes before the plan, these targets after it.
 */
import { createHash } from "node:crypto";
import { type Layer } from "./catalog.js";
import { type LayerTarget } from "./plan.js";
import { isMultiPlatform, platformLayerName, platformSlug } from "./platforms.js";
import { formatReference, formatRepository } from "./version.js";

/** One target per layer and platform, each platform's tree parents first, in the order of `platforms`. */
export function platformTargets(targets: readonly LayerTarget[], platforms: readonly string[], registry: string, group: string): LayerTarget[] {
  return platforms.flatMap((platform) => targets.map((target) => forPlatform(target, platform, registry, group)));
}

function forPlatform(target: LayerTarget, platform: string, registry: string, group: string): LayerTarget {
  const slug = platformSlug(platform);
  // The same path indexTargets gives each entry.
  const image = `${target.layer.image}/${slug}`;
  const layer: Layer = {
    ...target.layer,
    name: platformLayerName(target.layer.name, platform),
    image,
    ...(target.layer.parent === undefined ? {} : { parent: platformLayerName(target.layer.parent, platform) }),
  };
  return {
    ...target,
    layer,
    platform,
    repository: formatRepository(registry, group, image),
    repositoryPath: `${group}/${image}`,
    ref: formatReference(registry, group, image, target.tag),
    ...(target.parent === undefined ? {} : { parent: platformLayerName(target.parent, platform) }),
  };
}

/**
 * What a stack builds: its targets as they are (one platform), or one per layer and platform plus
 * one index per layer (two or more).
 */
export function buildTargets(targets: readonly LayerTarget[], config: { readonly platforms: readonly string[]; readonly registry: string; readonly group: string }): { builds: LayerTarget[]; indexes: IndexTarget[] } {
  if (!isMultiPlatform(config)) return { builds: [...targets], indexes: [] };
  return { builds: platformTargets(targets, config.platforms, config.registry, config.group), indexes: indexTargets(targets, config.platforms) };
}

/** One image index to put together: a layer's tag over its per-platform images. */
export interface IndexTarget {
  /** The catalog layer's name (the index resource's name, and its entry in the stack's `layers`). */
  readonly layer: string;
  /** The layer's own target (its repository and tag hold the index). */
  readonly target: LayerTarget;
  /** Each platform's target: its name and repository (`group/image/os-arch`), in the order of `platforms`. */
  readonly entries: readonly { readonly platform: string; readonly name: string; readonly repositoryPath: string }[];
}

export function indexTargets(targets: readonly LayerTarget[], platforms: readonly string[]): IndexTarget[] {
  return targets.map((target) => ({
    layer: target.layer.name,
    target,
    entries: platforms.map((platform) => ({ platform, name: platformLayerName(target.layer.name, platform), repositoryPath: `${target.repositoryPath}/${platformSlug(platform)}` })),
  }));
}

/**
 * The fingerprint of an index: its platforms' fingerprints, in order. Two runs that would put the
 * same per-platform images under the tag have the same one; a platform more or less changes it.
 */
export function indexFingerprint(entries: readonly { readonly platform: string; readonly fingerprint: string }[]): string {
  const hash = createHash("sha256");
  for (const entry of entries) hash.update(`${entry.platform}=${entry.fingerprint}\n`);
  return `sha256:${hash.digest("hex")}`;
}
