/**
 * Images copied by digest inside one registry, server-side, by Strata's
 * provider (cross-repository blob mount, then the manifest bytes unchanged).
 * Two resource types share the one copy:
 * - `strata:index:PromotedImage`: another channel's image into this channel's group;
 * - `strata:index:CopiedImage`: an image this channel's registry already holds with
 *   the layer's fingerprint, recorded without a build. Adoption: the source is the
 *   layer's own tag, so nothing is copied; the copy refuses if the tag has moved.
 *   CI copy: the source is the channel's tag (or an earlier patchset's), copied to
 *   the CI tag with an annotation naming it.
 */
import * as pulumi from "@pulumi/pulumi";
import { COPIED_IMAGE_TYPE, PROMOTED_IMAGE_TYPE } from "../core/image-types.js";

export interface RegistryCopyArgs {
  readonly registry: pulumi.Input<string>;
  readonly sourceRepository: pulumi.Input<string>;
  readonly digest: pulumi.Input<string>;
  readonly targetRepository: pulumi.Input<string>;
  readonly tag: pulumi.Input<string>;
  /** Refuse to move an existing tag to another digest. */
  readonly immutable: pulumi.Input<boolean>;
  /** Added to the copy's manifest, which then has a digest of its own (CI copies). */
  readonly annotations?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Registry login, a secret. */
  readonly registryAuth?: pulumi.Input<{ username: pulumi.Input<string>; password: pulumi.Input<string> }>;
}

abstract class RegistryCopy extends pulumi.CustomResource {
  /** `registry/group/image@sha256:…`, byte-identical to the source. */
  declare readonly repoDigest: pulumi.Output<string>;
  /** Whether this stack put the tag there (and so removes it on destroy). */
  declare readonly created: pulumi.Output<boolean>;

  protected constructor(type: string, name: string, args: RegistryCopyArgs, options?: pulumi.CustomResourceOptions) {
    // Delete needs the login again, so it stays in the outputs: as a secret, encrypted in the state.
    super(type, name, { ...args, repoDigest: undefined, created: undefined }, { ...options, additionalSecretOutputs: ["registryAuth"] });
  }
}

export class PromotedImage extends RegistryCopy {
  constructor(name: string, args: RegistryCopyArgs, options?: pulumi.CustomResourceOptions) {
    super(PROMOTED_IMAGE_TYPE, name, args, options);
  }
}

export class CopiedImage extends RegistryCopy {
  constructor(name: string, args: RegistryCopyArgs, options?: pulumi.CustomResourceOptions) {
    super(COPIED_IMAGE_TYPE, name, args, options);
  }
}
