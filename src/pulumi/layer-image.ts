/**
 * `strata:index:LayerImage`: one built-and-pushed image, served by Strata's own
 * provider plugin (src/pulumi/provider). Inputs and outputs mirror what LayerTree
 * uses of pulumi-docker's docker.Image: imageName in, repoDigest out.
 */
import * as pulumi from "@pulumi/pulumi";
import { LAYER_IMAGE_TYPE } from "../core/image-types.js";

export interface LayerImageArgs {
  readonly imageName: pulumi.Input<string>;
  readonly context: pulumi.Input<string>;
  readonly dockerfile: pulumi.Input<string>;
  readonly platform: pulumi.Input<string>;
  readonly buildArgs: pulumi.Input<Record<string, pulumi.Input<string>>>;
  readonly labels: pulumi.Input<Record<string, pulumi.Input<string>>>;
  readonly push: pulumi.Input<boolean>;
  readonly contextDigest: pulumi.Input<string>;
  /** `host` or `none` for the build steps (core/config.ts BUILD_NETWORKS); absent: the engine's default. */
  readonly network?: pulumi.Input<string>;
  /** Registry login, a secret input; the provider never returns it. */
  readonly registryAuth?: pulumi.Input<{ username: pulumi.Input<string>; password: pulumi.Input<string> }>;
}

export class LayerImage extends pulumi.CustomResource {
  /** `repo@sha256:…` after a push; the local image id when push is off. */
  declare readonly repoDigest: pulumi.Output<string>;
  declare readonly imageId: pulumi.Output<string>;
  declare readonly imageName: pulumi.Output<string>;

  constructor(name: string, args: LayerImageArgs, options?: pulumi.CustomResourceOptions) {
    super(LAYER_IMAGE_TYPE, name, { ...args, repoDigest: undefined, imageId: undefined }, options);
  }
}
