/**
 * What this stack's state says it built: for each layer with a build resource
 * (docker.Image, or LayerImage) in the checkpoint, the fingerprint it was
 * built with and the reference it was pushed under. Read from the checkpoint itself (`pulumi stack export`), which
 * the engine writes after every step, and not from the stack outputs, which a
 * failed or killed run leaves as the last successful run wrote them.
 */
import { execFile } from "node:child_process";
import { DOCKER_IMAGE_TYPE, LAYER_IMAGE_TYPE } from "../core/image-types.js";
import { BUILD_ARGS } from "../core/plan.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL } from "../core/fingerprint.js";
import { type BuiltLayer } from "../core/layer-origin.js";

interface StateResource {
  readonly urn?: string;
  readonly type?: string;
  readonly inputs?: Record<string, unknown>;
}

/**
 * Layer name → fingerprint and reference of its build resource of `type` in the state. Pure.
 * Only the current builder's resources count: after a switch of builder, a layer the other one
 * built is adopted from the registry rather than built again.
 */
export function builtLayers(deployment: unknown, type: string): Map<string, BuiltLayer> {
  const resources = ((deployment as { resources?: StateResource[] } | undefined)?.resources ?? []);
  const built = new Map<string, BuiltLayer>();
  for (const resource of resources) {
    const layer = resource.urn?.split("::").pop();
    if (layer === undefined || resource.type !== type) continue;
    let fingerprint: unknown;
    let inputsDigest: unknown;
    if (resource.type === DOCKER_IMAGE_TYPE) {
      const args = (resource.inputs?.build as { args?: Record<string, unknown> } | undefined)?.args;
      fingerprint = args?.[BUILD_ARGS.fingerprint];
      inputsDigest = args?.[BUILD_ARGS.inputs];
    } else if (resource.type === LAYER_IMAGE_TYPE) {
      const labels = resource.inputs?.labels as Record<string, unknown> | undefined;
      fingerprint = labels?.[FINGERPRINT_LABEL];
      inputsDigest = labels?.[INPUTS_LABEL];
    }
    const ref = resource.inputs?.imageName;
    if (typeof fingerprint === "string" && typeof ref === "string") built.set(layer, { fingerprint, ref, ...(typeof inputsDigest === "string" ? { inputsDigest } : {}) });
  }
  return built;
}

/** What the state says was built, or why it could not be read. */
export interface StateRead {
  readonly built: Map<string, BuiltLayer>;
  /** Set when the checkpoint could not be read: then `built` is empty because nothing is known. */
  readonly unreadable?: string;
}

/**
 * The current stack's checkpoint through the Pulumi CLI (the program runs under it, with its
 * backend and stack). A stack that cannot be read has an empty `built` and says why: a mutable
 * channel then adopts what the registry holds with the layers' fingerprints (the same content,
 * nothing lost); an immutable one stops, since its state is one of the two witnesses of what each
 * tag holds (core/channel.ts).
 */
export function readBuiltLayers(stack: string, type: string, cwd: string = process.cwd(), env: Readonly<Record<string, string>> = {}): Promise<StateRead> {
  return new Promise((resolve) => {
    execFile("pulumi", ["stack", "export", "--stack", stack], { cwd, env: { ...process.env, ...env }, maxBuffer: 512 << 20 }, (error, stdout, stderr) => {
      if (error !== null) {
        resolve({ built: new Map(), unreadable: `pulumi stack export failed: ${stderr.trim().split("\n").pop() ?? error.message}` });
        return;
      }
      try {
        resolve({ built: builtLayers((JSON.parse(stdout) as { deployment?: unknown }).deployment, type) });
      } catch (parseError) {
        resolve({ built: new Map(), unreadable: `pulumi stack export printed no JSON (${(parseError as Error).message})` });
      }
    });
  });
}
