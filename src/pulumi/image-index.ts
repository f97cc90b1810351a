/**
 * A multi-platform layer's tag (core/platform-targets.ts): one `strata:index:ImageIndex` per layer, over
 * the per-platform images the LayerTree declared, so `pulumi preview` shows each index and the
 * engine writes it after every platform's image is pushed, and again only when one changed.
 */
import * as pulumi from "@pulumi/pulumi";
import { IMAGE_INDEX_TYPE } from "../core/image-types.js";
import { type LayerOrigin } from "../core/layer-origin.js";
import { indexFingerprint, type IndexTarget } from "../core/platform-targets.js";
import { type LayerOutput, type LayerTree } from "./tree.js";

export interface ImageIndexArgs {
  readonly registry: pulumi.Input<string>;
  /** `group/image`: the layer's own repository, which holds the tag. */
  readonly repository: pulumi.Input<string>;
  readonly tag: pulumi.Input<string>;
  readonly immutable: pulumi.Input<boolean>;
  /** One per platform, in the stack's order: its per-platform repository and pushed `repo@digest`. */
  readonly entries: pulumi.Input<readonly pulumi.Input<{ platform: string; repository: string; digest: pulumi.Input<string> }>[]>;
  readonly registryAuth?: pulumi.Input<{ username: pulumi.Input<string>; password: pulumi.Input<string> }>;
}

export class ImageIndex extends pulumi.CustomResource {
  /** `registry/group/image@sha256:…` of the index. */
  declare readonly repoDigest: pulumi.Output<string>;
  /** Platform → `registry/group/image@sha256:…` of its manifest, in the layer's own repository. */
  declare readonly platformDigests: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: ImageIndexArgs, options?: pulumi.CustomResourceOptions) {
    // The provider keeps the login out of the outputs: delete never needs it (the tag stays).
    super(IMAGE_INDEX_TYPE, name, { ...args, repoDigest: undefined, platformDigests: undefined, created: undefined }, options);
  }
}

/** A multi-platform layer in the stack's `layers` output: its index, and each platform's image. */
export interface IndexedLayerOutput extends LayerOutput {
  readonly platforms: pulumi.Output<Record<string, string>>;
}

/**
 * One index per layer over its platforms' outputs (`built` by name, from the LayerTree). The
 * layer's entry in the stack output: the index's digest, every platform's digest, and the
 * fingerprint of the whole (indexFingerprint); its origin is "built" when any platform was built.
 */
export function declareIndexes(indexes: readonly IndexTarget[], built: ReadonlyMap<string, LayerOutput>, args: { registry: string; immutable: boolean; registryAuth?: pulumi.Output<{ username: string; password: string }> }, parent: LayerTree): IndexedLayerOutput[] {
  return indexes.map((index) => {
    const perPlatform = index.entries.map((entry) => {
      const output = built.get(entry.name);
      if (output === undefined) throw new Error(`layer ${index.layer}: no ${entry.platform} image was declared`);
      return { platform: entry.platform, repository: entry.repositoryPath, output };
    });
    const resource = new ImageIndex(index.layer, {
      registry: args.registry,
      repository: index.target.repositoryPath,
      tag: index.target.tag,
      immutable: args.immutable,
      entries: perPlatform.map(({ platform, repository, output }) => ({ platform, repository, digest: output.digestRef })),
      ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
    }, { parent, aliases: [parent.promotedBefore] });
    const origins = new Set(perPlatform.map(({ output }) => output.origin));
    const first = perPlatform[0]?.output as LayerOutput;
    return {
      layer: index.layer,
      kind: index.target.layer.kind,
      image: index.target.layer.image,
      tag: index.target.tag,
      ref: index.target.ref,
      digestRef: resource.repoDigest,
      platforms: resource.platformDigests,
      fingerprint: indexFingerprint(perPlatform.map(({ platform, output }) => ({ platform, fingerprint: output.fingerprint }))),
      inputsDigest: indexFingerprint(perPlatform.map(({ platform, output }) => ({ platform, fingerprint: output.inputsDigest }))),
      contextDigest: first.contextDigest,
      parent: index.target.parent ?? null,
      origin: (origins.size === 1 ? [...origins][0] : "built") as LayerOrigin,
      engine: null,
    };
  });
}
