/**
 * The one module that turns the catalog into Pulumi resources: a LayerTree
 * component with one `docker.Image` per layer. Each child's BASE_IMAGE build
 * argument is its parent's `repoDigest` output, so the engine orders the
 * builds, and a parent that rebuilds to a new digest changes its children's
 * inputs, which rebuilds exactly its subtree.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type StackConfig } from "./config.js";
import { type LayerTarget } from "./plan.js";
import { digestOf } from "./reference.js";

/** Build arguments every Dockerfile may declare; BASE_IMAGE is mandatory for non-root layers. */
export const BUILD_ARGS = {
  baseImage: "BASE_IMAGE",
  baseDigest: "STRATA_BASE_DIGEST",
  baseName: "STRATA_BASE_NAME",
  version: "STRATA_VERSION",
  source: "STRATA_SOURCE",
} as const;

export interface LayerTreeArgs {
  readonly targets: readonly LayerTarget[];
  readonly config: StackConfig;
}

/** What a deployer needs to pin one layer. */
export interface LayerOutput {
  readonly layer: string;
  readonly kind: string;
  readonly image: string;
  readonly tag: string;
  readonly ref: string;
  /** `repo@sha256:…` once pushed; the local image id when `push` is false. */
  readonly digestRef: pulumi.Output<string>;
  readonly parent: string | null;
}

export class LayerTree extends pulumi.ComponentResource {
  /** Images by layer name. */
  readonly images: ReadonlyMap<string, docker.Image>;
  readonly layers: readonly LayerOutput[];

  constructor(name: string, args: LayerTreeArgs, options?: pulumi.ComponentResourceOptions) {
    super("strata:index:LayerTree", name, {}, options);
    const images = new Map<string, docker.Image>();
    const refs = new Map(args.targets.map((target) => [target.layer.name, target.ref] as const));
    const layers: LayerOutput[] = [];
    for (const target of args.targets) {
      const parentImage = target.parent === undefined ? undefined : images.get(target.parent);
      if (target.parent !== undefined && parentImage === undefined) {
        // planTargets returns parents first and always includes ancestors.
        throw new Error(`layer ${target.layer.name}: its parent ${target.parent} was not declared first`);
      }
      const parentDigestRef = parentImage?.repoDigest;
      const buildArgs: Record<string, pulumi.Input<string>> = {
        [BUILD_ARGS.version]: target.tag,
        [BUILD_ARGS.source]: args.config.source,
      };
      if (parentDigestRef !== undefined && target.parent !== undefined) {
        const parentRef = refs.get(target.parent) as string;
        // Unpushed images have no repo digest to build FROM, only a local id;
        // the local tag is built in the same run, and the id still goes in as
        // STRATA_BASE_DIGEST so a changed parent still changes this layer's inputs.
        buildArgs[BUILD_ARGS.baseImage] = args.config.push ? parentDigestRef : parentRef;
        buildArgs[BUILD_ARGS.baseDigest] = parentDigestRef.apply(digestOf);
        buildArgs[BUILD_ARGS.baseName] = parentRef;
      }
      const image = new docker.Image(
        target.layer.name,
        {
          imageName: target.ref,
          skipPush: !args.config.push,
          build: {
            context: target.layer.contextDir,
            dockerfile: target.layer.dockerfile,
            platform: args.config.platform,
            builderVersion: docker.BuilderVersion.BuilderV1,
            args: buildArgs,
          },
        },
        { parent: this },
      );
      images.set(target.layer.name, image);
      layers.push({
        layer: target.layer.name,
        kind: target.layer.kind,
        image: target.layer.image,
        tag: target.tag,
        ref: target.ref,
        digestRef: image.repoDigest,
        parent: target.parent ?? null,
      });
    }
    this.images = images;
    this.layers = layers;
    this.registerOutputs({ layers: layers.map((layer) => ({ ...layer })) });
  }
}
