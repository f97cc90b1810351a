/** Pulumi mocks for program tests: records every resource and invents image outputs. */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE, DOCKER_IMAGE_TYPE, LAYER_IMAGE_TYPE } from "../../src/core/image-types.js";
import { IMAGE_ATTESTATIONS_SET_TYPE } from "../../src/core/image-types.js";

/** Resources that build a layer; the mock invents their digest as a push would. */
export const BUILT_IMAGE_TYPES: readonly string[] = [DOCKER_IMAGE_TYPE, LAYER_IMAGE_TYPE];

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  /** The explicit provider's reference (`urn::id`), when the resource names one. */
  readonly provider?: string;
}

export { CI_COPY_SET_TYPE, COPIED_IMAGE_TYPE, DOCKER_IMAGE_TYPE, LAYER_IMAGE_TYPE } from "../../src/core/image-types.js";

/** A stable fake digest per resource name, as a registry would return after a push. */
export function fakeDigest(name: string): string {
  return `sha256:${createHash("sha256").update(name).digest("hex")}`;
}

/** Installs mocks for one test file; returns the list that fills as resources register. */
export async function installMocks(stack = "dev"): Promise<RecordedResource[]> {
  const recorded: RecordedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const inputs = args.inputs as Record<string, unknown>;
        recorded.push({ type: args.type, name: args.name, inputs, ...(args.provider === undefined || args.provider === "" ? {} : { provider: args.provider }) });
        if (args.type === "pulumi:pulumi:StackReference") {
          // A stack with no deployment yet: no outputs.
          return { id: String(inputs.name), state: { ...inputs, outputs: {}, secretOutputNames: [] } };
        }
        if (args.type === CI_COPY_SET_TYPE) {
          // Like the provider: each copy has a digest of its own (its manifest carries an annotation).
          const copies = inputs.copies as { layer: string; repository: string }[];
          const repoDigests = Object.fromEntries(copies.map((copy) => [copy.layer, `${String(inputs.registry)}/${copy.repository}@${fakeDigest(`copy-${copy.layer}`)}`]));
          return { id: `${args.name}-id`, state: { ...inputs, repoDigests } };
        }
        if (args.type === IMAGE_ATTESTATIONS_SET_TYPE) {
          // Like the provider: by image name, where its signature is and the digest it is about.
          const images = inputs.images as Record<string, { digestRef: string }>;
          const attested = Object.fromEntries(Object.entries(images).map(([name, image]) => [name, { digestRef: image.digestRef, signature: `${image.digestRef}.sig`, sbom: `${image.digestRef}.att`, provenance: `${image.digestRef}.att`, packages: name.length }]));
          return { id: `${args.name}-id`, state: { registry: inputs.registry, attested } };
        }
        if (args.type === COPIED_IMAGE_TYPE) {
          // Like the provider: the copy reports the target repository at the source digest.
          return { id: `${args.name}-id`, state: { ...inputs, repoDigest: `${String(inputs.registry)}/${String(inputs.targetRepository)}@${String(inputs.digest)}`, created: false } };
        }
        if (BUILT_IMAGE_TYPES.includes(args.type)) {
          const imageName = String(inputs.imageName);
          const repository = imageName.replace(/:[^:/]*$/, "");
          const pushed = args.type === DOCKER_IMAGE_TYPE ? inputs.skipPush !== true : inputs.push !== false;
          // Like the provider: a pushed image has repo@digest, a local one only its id.
          const repoDigest = pushed ? `${repository}@${fakeDigest(args.name)}` : fakeDigest(args.name);
          return { id: `${args.name}-id`, state: { ...inputs, repoDigest } };
        }
        return { id: `${args.name}-id`, state: inputs };
      },
      call: (args) => args.inputs as Record<string, unknown>,
    },
    "strata",
    stack,
    false,
  );
  return recorded;
}

export function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}
