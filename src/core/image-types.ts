/**
 * Pulumi type tokens of Strata's resources (a layer's image, copies, indexes, signatures), in one
 * place for the program, Strata's provider and the CLI that reads engine events.
 */
import { type Builder } from "./config.js";
/** A layer built by @pulumi/docker's docker.Image. */
export const DOCKER_IMAGE_TYPE = "docker:index/image:Image";
/** A layer built by Strata's own provider (builder "strata"). */
export const LAYER_IMAGE_TYPE = "strata:index:LayerImage";
/**
 * A set of a CI run's copies: layers the channel already holds with their fingerprint, copied to
 * their CI tags inside the registry by one provider call. A run has one, not one resource per
 * layer: at Kolla's scale the engine's work per resource, not the copies, was the cost of a CI run
 * (README *CI builds*).
 */
export const CI_COPY_SET_TYPE = "strata:index:CiCopySet";
/** A layer adopted from the registry: its tag already held the layer's fingerprint. */
export const COPIED_IMAGE_TYPE = "strata:index:CopiedImage";
/** A layer promoted by digest from another channel. */
export const PROMOTED_IMAGE_TYPE = "strata:index:PromotedImage";
/** The component a promoting stack's PromotedImages sit under (a building stack's sit under a LayerTree). */
export const PROMOTION_TYPE = "strata:index:Promotion";

/**
 * A multi-platform layer's tag: an OCI image index over its per-platform images (core/platform-targets.ts),
 * put together in the registry by Strata's provider. Named by the layer, like its images.
 */
export const IMAGE_INDEX_TYPE = "strata:index:ImageIndex";

/**
 * A signing stack's signatures and attestations: a set of images signed and attested together
 * (core/attestation-sets.ts says which, pulumi/provider/attest-image.ts what it writes).
 */
export const IMAGE_ATTESTATIONS_SET_TYPE = "strata:index:ImageAttestationsSet";
/**
 * One image's signatures, as states written before the sets hold them. Only ever deleted now (the
 * engine deletes what the program no longer declares; its tags stay, like the sets'); a set writes
 * nothing for an image such a resource signed with the same key (attest-image.ts finds its
 * signature in the `.sig` tag and its attestations in the `.att`).
 */
export const IMAGE_ATTESTATIONS_TYPE = "strata:index:ImageAttestations";

/** The resource each builder declares for a layer it builds. */
export const BUILD_RESOURCE_TYPES: Readonly<Record<Builder, string>> = { docker: DOCKER_IMAGE_TYPE, strata: LAYER_IMAGE_TYPE };

/** Resources that stand for one layer each (the URN's name is the layer's); a CiCopySet stands for several. */
export const IMAGE_TYPES: ReadonlySet<string> = new Set([DOCKER_IMAGE_TYPE, LAYER_IMAGE_TYPE, COPIED_IMAGE_TYPE, PROMOTED_IMAGE_TYPE, IMAGE_INDEX_TYPE]);
/** Served by the registry copy in Strata's provider. */
export const REGISTRY_COPY_TYPES: ReadonlySet<string> = new Set([COPIED_IMAGE_TYPE, PROMOTED_IMAGE_TYPE]);
