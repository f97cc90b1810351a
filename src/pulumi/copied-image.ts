/**
 * Images copied by digest inside one registry, server-side, by Strata's
 * provider (cross-repository blob mount, then the manifest bytes unchanged).
 * Two resource types share the one copy:
 * - `strata:index:PromotedImage`: another channel's image into this channel's group;
 * - `strata:index:CopiedImage`: an image this channel's registry already holds with
 *   the layer's fingerprint, recorded without a build. Adoption: the source is the
 *   layer's own tag, so nothing is copied; the copy refuses if the tag has moved.
 * A CI run's copies are `strata:index:CiCopySet`s (below).
 */
import * as pulumi from "@pulumi/pulumi";
import { CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE, PROMOTED_IMAGE_TYPE } from "../core/image-types.js";

export interface RegistryCopyArgs {
  readonly registry: pulumi.Input<string>;
  readonly sourceRepository: pulumi.Input<string>;
  readonly digest: pulumi.Input<string>;
  readonly targetRepository: pulumi.Input<string>;
  readonly tag: pulumi.Input<string>;
  /** Refuse to move an existing tag to another digest. */
  readonly immutable: pulumi.Input<boolean>;
  /** Copy the digest's cosign `.sig`/`.att` tags with it, so the copy verifies with plain cosign (a promotion). */
  readonly copySignatures?: pulumi.Input<boolean>;
  /**
   * With copySignatures: exactly these `.sig`/`.att` manifests (tag → manifest digest), the ones
   * the promotion gate verified, copied by digest, not whatever the source's tags hold by then.
   */
  readonly signatures?: pulumi.Input<Record<string, string>>;
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

export interface CiCopySetArgs {
  readonly registry: pulumi.Input<string>;
  /** One per copied layer: its repository, the digest to copy, the CI tag, the manifest annotations. */
  readonly copies: pulumi.Input<readonly { layer: string; repository: string; digest: string; tag: string; annotations: Record<string, string> }[]>;
  readonly registryAuth?: RegistryCopyArgs["registryAuth"];
}

/**
 * A CI run's copies: the layers the channel (or an earlier patchset) holds with the layer's
 * fingerprint, copied to their CI tags inside the registry in one provider call (core/image-types.ts
 * says why one set, not a resource per layer).
 */
export class CiCopySet extends pulumi.CustomResource {
  /** Layer → `registry/group/image@sha256:…` of its copy. */
  declare readonly repoDigests: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: CiCopySetArgs, options?: pulumi.CustomResourceOptions) {
    // The provider keeps the login out of the outputs: its delete never needs it (CI tags stay).
    super(CI_COPY_SET_TYPE, name, { ...args, repoDigests: undefined }, options);
  }
}
