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
  /** Registry login, a secret. */
  readonly registryAuth?: pulumi.Input<{ username: pulumi.Input<string>; password: pulumi.Input<string> }>;
}

export class PromotedImage extends pulumi.CustomResource {
  /** `registry/group/image@sha256:…`, byte-identical to the source. */
  declare readonly repoDigest: pulumi.Output<string>;
  /** Whether this stack put the tag there (and so removes it on destroy). */
  declare readonly created: pulumi.Output<boolean>;

  constructor(name: string, args: PromotedImageArgs, options?: pulumi.CustomResourceOptions) {
    // Delete needs the login again, so it stays in the outputs: as a secret, encrypted in the state.
    super("strata:index:PromotedImage", name, { ...args, repoDigest: undefined, created: undefined }, { ...options, additionalSecretOutputs: ["registryAuth"] });
  }
}
