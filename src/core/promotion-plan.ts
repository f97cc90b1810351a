/**
 * Promotion: a channel fed by another channel's images instead of builds.
 * Pure planning from the source stack's `layers` output; no Pulumi here.
 */
import { CONFIG_NAMESPACE, type StackConfig } from "./config.js";
import { type Problem } from "./problems.js";
import { isCosignTag } from "./cosign-format.js";
import { isPathComponent, isTag, parseReference } from "./reference.js";
import { refusalParagraph, type ImageVerdict, type VerifyTarget } from "./trust-verdict.js";

/** One entry of a source stack's `layers` output (see LayerOutput). */
export interface SourceLayer {
  readonly layer: string;
  readonly kind: string;
  readonly image: string;
  readonly tag: string;
  readonly ref: string;
  readonly digestRef: string;
  readonly fingerprint?: string;
  readonly inputsDigest?: string;
  readonly parent: string | null;
}

export interface PromotionTarget {
  readonly source: SourceLayer;
  readonly sourceRepository: string;
  readonly digest: string;
  readonly targetRepository: string;
  readonly tag: string;
  /** `registry/group/image:tag` in this channel. */
  readonly ref: string;
}

export function planPromotion(sourceLayers: Readonly<Record<string, SourceLayer>>, config: StackConfig, stackFile: string): { targets: PromotionTarget[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const targets: PromotionTarget[] = [];
  const field = `${CONFIG_NAMESPACE}:promoteFrom`;
  if (Object.keys(sourceLayers).length === 0) {
    problems.push({ file: stackFile, field, message: `stack "${config.promoteFrom ?? ""}" has no layers output to promote`, fix: "run pulumi up on the source channel first, or correct strata:promoteFrom" });
  }
  for (const source of Object.values(sourceLayers)) {
    const parsed = parseReference(source.digestRef);
    if (parsed.digest === undefined || !parsed.digest.startsWith("sha256:")) {
      problems.push({ file: stackFile, field, message: `layer "${source.layer}" of the source has no pushed digest (${source.digestRef})`, fix: "promote from a channel that pushes (strata:push true)" });
      continue;
    }
    if (parsed.registry !== config.registry) {
      problems.push({ file: stackFile, field, message: `layer "${source.layer}" lives in registry ${parsed.registry}, this channel in ${config.registry}`, fix: "promote within one registry: set strata:registry to the source's" });
      continue;
    }
    // The tag and image name go into registry addresses: a "../" would be resolved to another
    // repository's path, where the copy would land unverified (the gate verifies by repository).
    const unusable = !isTag(source.tag) || isCosignTag(source.tag) ? `the tag "${source.tag}", which is not a version tag (letters, digits, "_", "." and "-"; not cosign's sha256-<hex>.sig/.att)` : !source.image.split("/").every(isPathComponent) ? `the image "${source.image}", which is not a repository path (lowercase components separated by "/")` : undefined;
    if (unusable !== undefined) {
      problems.push({ file: stackFile, field, message: `layer "${source.layer}" of the source stack's layers output names ${unusable}`, fix: "the source stack's outputs were not written by Strata, or were edited: run pulumi up on the source channel again, then promote" });
      continue;
    }
    const targetRepository = `${config.group}/${source.image}`;
    targets.push({ source, sourceRepository: parsed.path, digest: parsed.digest, targetRepository, tag: source.tag, ref: `${config.registry}/${targetRepository}:${source.tag}` });
  }
  return { targets: targets.sort((a, b) => (a.source.layer < b.source.layer ? -1 : 1)), problems };
}

/** A platform image of an index, as the index lists it. */
export interface IndexChild {
  readonly digest: string;
  /** `os/arch[/variant]` from the index entry. */
  readonly platform: string;
}

/**
 * What the promotion gate verifies (issue 29, item 5): every image and index the promotion would
 * copy, in the source repository it is copied from; for an index also each platform image it
 * lists (the copy carries them into the index's repository). `children` holds the platforms of
 * each source digest that is an index.
 */
export function gateTargets(targets: readonly PromotionTarget[], registry: string, children: ReadonlyMap<string, readonly IndexChild[]>): VerifyTarget[] {
  return targets.flatMap((target) => [
    { layer: target.source.layer, digestRef: `${registry}/${target.sourceRepository}@${target.digest}`, publishedAs: target.targetRepository },
    ...(children.get(target.digest) ?? []).map((child) => ({ layer: target.source.layer, platform: child.platform, digestRef: `${registry}/${target.sourceRepository}@${child.digest}`, publishedAs: target.targetRepository })),
  ]);
}

/**
 * The refusal of a whole promotion: one paragraph per refused image; none when every one is
 * admitted. Nothing is copied when there is one: a channel never holds part of a release.
 */
export function promotionRefusals(verdicts: readonly ImageVerdict[]): string[] {
  return verdicts.filter((verdict) => !verdict.admitted).map(refusalParagraph);
}

export function refusalMessage(refusals: readonly string[], total: number, stackFile: string): string {
  return `the promotion is refused: ${refusals.length} of ${total} images did not pass ${CONFIG_NAMESPACE}:trust (${stackFile}); nothing was copied and this channel's tags are unchanged.\n\n${refusals.join("\n\n")}`;
}

//END
