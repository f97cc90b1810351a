/**
 * The one module that turns the catalog into Pulumi resources: a LayerTree
 * component with one image resource per layer. Each child's BASE_IMAGE build
 * argument is its parent's `repoDigest` output, so the engine orders the
 * builds, and a parent that rebuilds to a new digest changes its children's
 * inputs, which rebuilds exactly its subtree.
 */
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type StackConfig } from "./config.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL, type LayerFingerprint } from "./fingerprint.js";
import { LayerImage } from "./layer-image.js";
import { BUILD_ARGS, type LayerTarget } from "./plan.js";
import { digestOf } from "./reference.js";

export interface LayerTreeArgs {
  readonly targets: readonly LayerTarget[];
  readonly config: StackConfig;
  /** From fingerprintTargets, for every target. */
  readonly fingerprints: ReadonlyMap<string, LayerFingerprint>;
  /** Registry login (a secret Output), when the stack config has one. */
  readonly registryAuth?: pulumi.Output<{ username: string; password: string }>;
  /**
   * The @pulumi/docker module, for builder "pulumi-docker" only. Passed in
   * rather than imported here: loading it costs every run half a second.
   */
  readonly dockerModule?: typeof docker;
}

/** What a deployer needs to pin one layer, built or promoted (the `layers` stack output). */
export interface PublishedLayer {
  readonly layer: string;
  readonly kind: string;
  readonly image: string;
  readonly tag: string;
  readonly ref: string;
  /** `repo@sha256:…` once pushed; the local image id when `push` is false. */
  readonly digestRef: pulumi.Output<string>;
  readonly parent: string | null;
}

/** A built layer. */
export interface LayerOutput extends PublishedLayer {
  /** Content fingerprint: own inputs plus the parent's fingerprint. */
  readonly fingerprint: string;
  /** Digest of the layer's own inputs (context, own build arguments, platform). */
  readonly inputsDigest: string;
  /** sha256 of the build context alone (what `strata plan` calls content). */
  readonly contextDigest: string;
}

/** The part of an image resource LayerTree reads back. */
interface BuiltImage {
  readonly repoDigest: pulumi.Output<string>;
}

export class LayerTree extends pulumi.ComponentResource {
  /** Image resources by layer name. */
  readonly images: ReadonlyMap<string, docker.Image | LayerImage>;
  readonly layers: readonly LayerOutput[];

  constructor(name: string, args: LayerTreeArgs, options?: pulumi.ComponentResourceOptions) {
    super("strata:index:LayerTree", name, {}, options);
    const { config } = args;
    const images = new Map<string, docker.Image | LayerImage>();
    const refs = new Map(args.targets.map((target) => [target.layer.name, target.ref] as const));
    const layers: LayerOutput[] = [];
    for (const target of args.targets) {
      const { layer } = target;
      const fingerprint = args.fingerprints.get(layer.name);
      if (fingerprint === undefined) throw new Error(`layer ${layer.name} has no fingerprint`);
      const parentImage: BuiltImage | undefined = target.parent === undefined ? undefined : images.get(target.parent);
      if (target.parent !== undefined && parentImage === undefined) {
        // planTargets returns parents first and always includes ancestors.
        throw new Error(`layer ${layer.name}: its parent ${target.parent} was not declared first`);
      }
      const buildArgs: Record<string, pulumi.Input<string>> = { ...target.ownBuildArgs };
      if (parentImage !== undefined && target.parent !== undefined) {
        const parentRef = refs.get(target.parent) as string;
        // Unpushed images have no repo digest to build FROM, only a local id;
        // the local tag is built in the same run, and the id still goes in as
        // STRATA_BASE_DIGEST so a changed parent still changes this layer's inputs.
        buildArgs[BUILD_ARGS.baseImage] = config.push ? parentImage.repoDigest : parentRef;
        buildArgs[BUILD_ARGS.baseDigest] = parentImage.repoDigest.apply(digestOf);
        buildArgs[BUILD_ARGS.baseName] = parentRef;
      }
      const dockerModule = args.dockerModule;
      if (config.builder === "pulumi-docker" && dockerModule === undefined) throw new Error('builder "pulumi-docker" needs the @pulumi/docker module');
      const image = config.builder === "pulumi-docker" && dockerModule !== undefined
        ? new dockerModule.Image(layer.name, {
          imageName: target.ref,
          skipPush: !config.push,
          build: {
            context: layer.contextDir,
            dockerfile: layer.dockerfile,
            platform: config.platform,
            builderVersion: dockerModule.BuilderVersion.BuilderV1,
            args: buildArgs,
          },
        }, { parent: this })
        : new LayerImage(layer.name, {
          imageName: target.ref,
          context: layer.contextDir,
          dockerfile: layer.dockerfile,
          platform: config.platform,
          buildArgs,
          labels: { [FINGERPRINT_LABEL]: fingerprint.fingerprint, [INPUTS_LABEL]: fingerprint.inputsDigest },
          push: config.push,
          contextDigest: fingerprint.contextDigest,
          ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
        }, { parent: this });
      images.set(layer.name, image);
      layers.push({
        layer: layer.name,
        kind: layer.kind,
        image: layer.image,
        tag: target.tag,
        ref: target.ref,
        digestRef: image.repoDigest,
        fingerprint: fingerprint.fingerprint,
        inputsDigest: fingerprint.inputsDigest,
        contextDigest: fingerprint.contextDigest,
        parent: target.parent ?? null,
      });
    }
    this.images = images;
    this.layers = layers;
    this.registerOutputs({ layers: layers.map((layer) => ({ ...layer })) });
  }
}
