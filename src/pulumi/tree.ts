/**
 * The one module that turns the catalog into Pulumi resources: a LayerTree
 * component with one image resource per layer. A layer that is built is a
 * docker.Image (@pulumi/docker) whose BASE_IMAGE build argument is its
 * parent's `repoDigest` output, so the engine orders the builds, and a parent
 * that rebuilds to a new digest changes its children's inputs, which rebuilds
 * exactly its subtree. A layer the registry already holds with its own
 * fingerprint (layer-origin.ts) is recorded by a CopiedImage instead: nothing
 * is built or pushed, and its children build on the registry's digest. In a CI
 * run, the layers the channel already holds with their fingerprint are copied
 * to their CI tags inside the registry (one CiCopySet for all of them), and
 * only the rest is built, on the very images the copies are made from.
 */
import path from "node:path";
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type StackConfig } from "../core/config.js";
import { CiCopySet, CopiedImage } from "./copied-image.js";
import { writeLabelledDockerfile } from "./dockerfile.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL, type LayerFingerprint } from "../core/fingerprint.js";
import { LayerImage } from "./layer-image.js";
import { type LayerOrigin, type LayerSource } from "../core/layer-origin.js";
import { COPY_TAG_ANNOTATION } from "../core/ci-build.js";
import { PROMOTED_IMAGE_TYPE, PROMOTION_TYPE } from "../core/image-types.js";
import { BUILD_ARGS, type LayerTarget } from "../core/plan.js";
import { digestOf } from "../core/reference.js";

export interface LayerTreeArgs {
  readonly targets: readonly LayerTarget[];
  readonly config: StackConfig;
  /** From fingerprintTargets, for every target. */
  readonly fingerprints: ReadonlyMap<string, LayerFingerprint>;
  /** From decideSources, for every target; a layer absent here is built. */
  readonly sources?: ReadonlyMap<string, LayerSource>;
  /** Registry login (a secret Output), when the stack config has one. */
  readonly registryAuth?: pulumi.Output<{ username: string; password: string }>;
  /** The @pulumi/docker module (builder "docker"), passed in so that the program loads it once, after mocks in tests. */
  readonly dockerModule?: typeof docker;
  /** The Pulumi project folder: build paths are declared relative to it. Default: the working folder. */
  readonly projectDir?: string;
  /** With `config.engines`: layer → index of the engine that builds it (core/placement.ts). */
  readonly engineOf?: ReadonlyMap<string, number>;
  /** From builtAsIs (core/layer-origin.ts): the layers whose docker.Image keeps the network it was built with. */
  readonly builtAsIs?: ReadonlySet<string>;
  /**
   * Layer → whether its docker.Image pulls the parent first (core/parent-pull.ts parentPulls). A
   * layer absent here does, as every layer did before the choice existed.
   */
  readonly pullsParentFirst?: ReadonlyMap<string, boolean>;
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
  /** Built by this stack, copied from another tag (CI), adopted from the registry, or promoted from another channel. */
  readonly origin: LayerOrigin;
  /** The engine of the pool that builds it (`strata:engines`); null without a pool, or when nothing is built. */
  readonly engine?: string | null;
}

/** A built or adopted layer. */
export interface LayerOutput extends PublishedLayer {
  /** Content fingerprint: own inputs plus the parent's fingerprint. */
  readonly fingerprint: string;
  /** Digest of the layer's own inputs (context, own build arguments, platform). */
  readonly inputsDigest: string;
  /** sha256 of the build context alone (what `strata plan` calls content). */
  readonly contextDigest: string;
}

/** The part of an image resource LayerTree reads back. */
interface LayerResource {
  readonly repoDigest: pulumi.Output<string>;
}

/** The image a child layer is built FROM: `repo@sha256:…` and the reference it was known by. */
interface BaseImage {
  readonly digestRef: pulumi.Input<string>;
  readonly ref: string;
}

export class LayerTree extends pulumi.ComponentResource {
  /** Each layer's image (its resource, or its entry in the CI copies) by layer name. */
  readonly images: ReadonlyMap<string, LayerResource>;
  readonly layers: readonly LayerOutput[];
  /**
   * The resource a layer's image had under a Promotion of this tree's name (pulumi/channel-run.ts names
   * both "layers"): a stack that promoted the layer before and builds now adopts the very tag its
   * PromotedImage wrote (a CopiedImage; a multi-platform layer's ImageIndex puts the same index
   * again), and as the same resource, updated, the engine never deletes the promotion at the end
   * of the run, whose delete by digest would take the tag just adopted.
   */
  readonly promotedBefore: pulumi.Alias;

  constructor(name: string, args: LayerTreeArgs, options?: pulumi.ComponentResourceOptions) {
    super("strata:index:LayerTree", name, {}, options);
    this.promotedBefore = { type: PROMOTED_IMAGE_TYPE, parent: pulumi.createUrn(name, PROMOTION_TYPE) };
    const images = new Map<string, LayerResource>();
    /** What each layer's children build on (see below for a copied layer). */
    const bases = new Map<string, BaseImage>();
    const copySet = this.copyAll(args);
    // One docker.Provider per engine of the pool, each with its own host; none without a pool.
    const engines = args.config.engines ?? [];
    const providers = engines.length === 0 || args.dockerModule === undefined ? [] : engines.map((engine, index) => new (args.dockerModule as typeof docker).Provider(`engine-${index}`, {
      host: engine.host,
      ...(engine.certPath === undefined ? {} : { certPath: engine.certPath }),
    }, { parent: this }));
    const layers: LayerOutput[] = [];
    for (const target of args.targets) {
      const { layer } = target;
      const fingerprint = args.fingerprints.get(layer.name);
      if (fingerprint === undefined) throw new Error(`layer ${layer.name} has no fingerprint`);
      const parent = target.parent === undefined ? undefined : bases.get(target.parent);
      if (target.parent !== undefined && parent === undefined) {
        // planTargets returns parents first and always includes ancestors.
        throw new Error(`layer ${layer.name}: its parent ${target.parent} was not declared first`);
      }
      const source = args.sources?.get(layer.name) ?? { origin: "built" };
      const engineIndex = args.engineOf?.get(layer.name) ?? 0;
      const image = source.origin === "adopted" ? this.adopt(target, digestOf(source.published.digestRef), args)
        : source.origin === "copied" ? { repoDigest: (copySet as CiCopySet).repoDigests.apply((digests) => digests[layer.name] as string) }
        : this.build(target, fingerprint, parent, args, { provider: providers[engineIndex], pullsParentFirst: args.pullsParentFirst?.get(layer.name) ?? true });
      images.set(layer.name, image);
      // A copied layer's children build on the image the copy is made from (the channel's release
      // tag, or an earlier patchset's): the same config and layers as the copy, known before the
      // run starts, so a build waits for no copy and the copies run beside the builds.
      bases.set(layer.name, source.origin === "copied"
        ? { digestRef: source.from.published.digestRef, ref: `${target.repository}:${source.from.tag}` }
        : { digestRef: image.repoDigest, ref: target.ref });
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
        origin: source.origin,
        engine: source.origin === "built" ? engines[engineIndex]?.host ?? null : null,
      });
    }
    this.images = images;
    this.layers = layers;
    this.registerOutputs({ layers: layers.map((layer) => ({ ...layer })) });
  }

  /**
   * A CI run's unchanged layers: the channel's images (or an earlier patchset's) copied to their CI
   * tags inside the registry, each annotated with its tag so the copy has a digest of its own and
   * `strata ci-clean` can delete it without touching the channel's tag. One resource for all of
   * them (image-types.ts says why), which no build waits for. The tags outlive the resource
   * (retainOnDelete), like a docker.Image's: a later patchset's run must not remove the image set a
   * deployment test may still be using; ci-clean removes them.
   */
  private copyAll(args: LayerTreeArgs): CiCopySet | undefined {
    const copies = args.targets.flatMap((target) => {
      const source = args.sources?.get(target.layer.name);
      return source?.origin === "copied"
        ? [{ layer: target.layer.name, repository: target.repositoryPath, digest: digestOf(source.from.published.digestRef), tag: target.tag, annotations: { [COPY_TAG_ANNOTATION]: target.tag } }]
        : [];
    });
    if (copies.length === 0) return undefined;
    return new CiCopySet("ci-copies", {
      registry: args.config.registry,
      copies,
      ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
    }, { parent: this, retainOnDelete: true });
  }

  /** The registry's image under this layer's tag, recorded as it is: the copy finds the tag in place and copies nothing. */
  private adopt(target: LayerTarget, digest: string, args: LayerTreeArgs): CopiedImage {
    return new CopiedImage(target.layer.name, {
      registry: args.config.registry,
      sourceRepository: target.repositoryPath,
      digest,
      targetRepository: target.repositoryPath,
      tag: target.tag,
      // The tag must still hold what was looked up: an adoption never moves a tag.
      immutable: true,
      ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
    }, { parent: this, aliases: [this.promotedBefore] });
  }

  private build(
    target: LayerTarget,
    fingerprint: LayerFingerprint,
    parent: BaseImage | undefined,
    args: LayerTreeArgs,
    engine: { readonly provider: pulumi.ProviderResource | undefined; readonly pullsParentFirst: boolean },
  ): pulumi.CustomResource & LayerResource {
    const { config } = args;
    const buildArgs: Record<string, pulumi.Input<string>> = { ...target.ownBuildArgs };
    if (parent !== undefined) {
      // Unpushed images have no repo digest to build FROM, only a local id;
      // the local tag is built in the same run, and the id still goes in as
      // STRATA_BASE_DIGEST so a changed parent still changes this layer's inputs.
      buildArgs[BUILD_ARGS.baseImage] = config.push ? parent.digestRef : parent.ref;
      buildArgs[BUILD_ARGS.baseDigest] = pulumi.output(parent.digestRef).apply(digestOf);
      buildArgs[BUILD_ARGS.baseName] = parent.ref;
    }
    const { layer } = target;
    // Absent for the engine's default, so a stack that never set it declares the inputs it always did.
    const network = config.buildNetwork === "default" ? {} : { network: config.buildNetwork };
    if (config.builder === "strata") {
      return new LayerImage(layer.name, {
        imageName: target.ref,
        context: layer.contextDir,
        dockerfile: layer.dockerfile,
        platform: target.platform ?? config.platform,
        buildArgs,
        labels: { [FINGERPRINT_LABEL]: fingerprint.fingerprint, [INPUTS_LABEL]: fingerprint.inputsDigest },
        push: config.push,
        contextDigest: fingerprint.contextDigest,
        // Not a rebuild reason (LAYER_IMAGE_INPUTS leaves it out): how the steps run, not what they make.
        ...network,
        ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
      }, { parent: this });
    }
    const dockerModule = args.dockerModule;
    if (dockerModule === undefined) throw new Error('builder "docker" needs the @pulumi/docker module');
    const projectDir = args.projectDir ?? process.cwd();
    buildArgs[BUILD_ARGS.fingerprint] = fingerprint.fingerprint;
    buildArgs[BUILD_ARGS.inputs] = fingerprint.inputsDigest;
    return new dockerModule.Image(layer.name, {
      imageName: target.ref,
      skipPush: !config.push,
      // Never build during a preview: `pulumi preview` and `strata plan` only say what an up would do.
      buildOnPreview: false,
      build: {
        // Relative to the project folder, so two runners' clones in different folders declare the same inputs.
        context: path.relative(projectDir, layer.contextDir) || ".",
        dockerfile: writeLabelledDockerfile(layer.name, layer.dockerfile, projectDir),
        platform: target.platform ?? config.platform,
        builderVersion: dockerModule.BuilderVersion.BuilderBuildKit,
        ...network,
        args: buildArgs,
        // docker.Image pulls cacheFrom images through the engine before it builds, with the stack's
        // login, so a runner without the parent gets it the way `docker pull` does; only on engines
        // whose BuildKit would not (core/parent-pull.ts says which, and what the pull costs).
        ...(parent !== undefined && config.push && engine.pullsParentFirst ? { cacheFrom: { images: [parent.digestRef] } } : {}),
      },
      ...(args.registryAuth === undefined ? {} : {
        // docker.Image diffs only the server: a changed password is no reason to rebuild.
        registry: { server: config.registry, username: args.registryAuth.apply((auth) => auth.username), password: args.registryAuth.apply((auth) => auth.password) },
      }),
    }, {
      parent: this,
      ...(engine.provider === undefined ? {} : { provider: engine.provider }),
      // The network a build step gets changes how a layer is built, not what it holds: a change of
      // strata:buildNetwork rebuilds no layer by itself. Only for layers left as they are: Pulumi
      // keeps an ignored input's old value on an update too, so a layer rebuilt for its content
      // would otherwise go on with the network it was first built with. (The parent pull is kept
      // for those layers another way, by declaring it as the state has it: parentPulls.)
      ...(args.builtAsIs?.has(layer.name) === true ? { ignoreChanges: ["build.network"] } : {}),
    });
  }
}
