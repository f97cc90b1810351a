/**
 * The Pulumi shell of promotion: read the source channel's stack outputs and
 * declare one PromotedImage (a server-side copy by digest) per layer.
 */
import * as pulumi from "@pulumi/pulumi";
import { PromotedImage } from "./copied-image.js";
import { type PromotionTarget, type SourceLayer } from "../core/promotion-plan.js";
import { type PublishedLayer } from "./tree.js";

/** The source stack's `layers` output. `dev` means the same project's dev stack. */
export async function readSourceLayers(stack: string): Promise<Record<string, SourceLayer>> {
  const name = stack.includes("/") ? stack : `organization/${pulumi.getProject()}/${stack}`;
  const reference = new pulumi.StackReference(`promote-from-${stack}`, { name });
  const details = await reference.getOutputDetails("layers");
  return (details.value ?? {}) as Record<string, SourceLayer>;
}

/** A promoted layer: the source's fingerprints travel with the image. */
export interface PromotedLayer extends PublishedLayer {
  readonly fingerprint: string | null;
  readonly inputsDigest: string | null;
  /** The source channel's `repo@digest`. */
  readonly promotedFrom: string;
}

export class Promotion extends pulumi.ComponentResource {
  readonly layers: readonly PromotedLayer[];

  constructor(name: string, args: { targets: readonly PromotionTarget[]; registry: string; immutable: boolean; registryAuth?: pulumi.Output<{ username: string; password: string }> }, options?: pulumi.ComponentResourceOptions) {
    super("strata:index:Promotion", name, {}, options);
    this.layers = args.targets.map((target) => {
      const image = new PromotedImage(target.source.layer, {
        registry: args.registry,
        sourceRepository: target.sourceRepository,
        digest: target.digest,
        targetRepository: target.targetRepository,
        tag: target.tag,
        immutable: args.immutable,
        ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
      }, { parent: this });
      return {
        layer: target.source.layer,
        kind: target.source.kind,
        image: target.source.image,
        tag: target.tag,
        ref: target.ref,
        digestRef: image.repoDigest,
        fingerprint: target.source.fingerprint ?? null,
        inputsDigest: target.source.inputsDigest ?? null,
        parent: target.source.parent,
        origin: "promoted" as const,
        promotedFrom: target.source.digestRef,
      };
    });
    this.registerOutputs({ layers: this.layers.map((layer) => ({ ...layer })) });
  }
}
