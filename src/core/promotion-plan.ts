/**
 * Promotion: a channel fed by another channel's images instead of builds.
 * Pure planning from the source stack's `layers` output; no Pulumi here.
 */
import { CONFIG_NAMESPACE, type StackConfig } from "./config.js";
import { type Problem } from "./problems.js";
import { parseReference } from "./reference.js";

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
    const targetRepository = `${config.group}/${source.image}`;
    targets.push({ source, sourceRepository: parsed.path, digest: parsed.digest, targetRepository, tag: source.tag, ref: `${config.registry}/${targetRepository}:${source.tag}` });
  }
  return { targets: targets.sort((a, b) => (a.source.layer < b.source.layer ? -1 : 1)), problems };
}

//END
