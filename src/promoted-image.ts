/**
 * `strata:index:PromotedImage`: an image copied by digest from another
 * channel's group into this one, with the same tag, by Strata's provider.
 */
import * as pulumi from "@pulumi/pulumi";

export interface PromotedImageArgs {
  readonly registry: pulumi.Input<string>;
  readonly sourceRepository: pulumi.Input<string>;
  readonly digest: pulumi.Input<string>;
  readonly targetRepository: pulumi.Input<string>;
  readonly tag: pulumi.Input<string>;
  readonly immutable: pulumi.Input<boolean>;
}

export class PromotedImage extends pulumi.CustomResource {
  /** `registry/group/image@sha256:…`, byte-identical to the source. */
  declare readonly repoDigest: pulumi.Output<string>;
  /** Whether this stack put the tag there (and so removes it on destroy). */
  declare readonly created: pulumi.Output<boolean>;

  constructor(name: string, args: PromotedImageArgs, options?: pulumi.CustomResourceOptions) {
    super("strata:index:PromotedImage", name, { ...args, repoDigest: undefined, created: undefined }, options);
  }
}
