/** Pulumi mocks for program tests: records every resource and invents docker.Image outputs. */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

export const DOCKER_IMAGE_TYPE = "docker:index/image:Image";
export const LAYER_IMAGE_TYPE = "strata:index:LayerImage";
export const IMAGE_TYPES: readonly string[] = [DOCKER_IMAGE_TYPE, LAYER_IMAGE_TYPE];

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
        recorded.push({ type: args.type, name: args.name, inputs });
        if (IMAGE_TYPES.includes(args.type)) {
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
