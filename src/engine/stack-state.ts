/**
 * What this stack's state says it built: for each layer with a build resource
 * (docker.Image, or LayerImage) in the checkpoint, the fingerprint it was
 * built with and the reference it was pushed under. Read from the checkpoint itself (`pulumi stack export`),
 * and not from the stack outputs, which a failed or killed run leaves as the last successful run
 * wrote them. On an immutable channel the engine writes it after every step; elsewhere only as the
 * run ends (cli-run.ts checkpointEnv), a failed or Ctrl-C'd run included: a killed run's steps are
 * not in it there, and the layers it pushed are adopted from the registry (core/layer-origin.ts).
 */
import { execFile } from "node:child_process";
import { type StateWitness, type WitnessedTag } from "../core/channel.js";
import { COPIED_IMAGE_TYPE, DOCKER_IMAGE_TYPE, IMAGE_INDEX_TYPE, LAYER_IMAGE_TYPE, PROMOTED_IMAGE_TYPE } from "../core/image-types.js";
import { BUILD_ARGS } from "../core/plan.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL } from "../core/fingerprint.js";
import { digestOf } from "../core/reference.js";
import { type BuiltLayer } from "../core/layer-origin.js";
import { checkpointFile, readCheckpointDeployment } from "./file-backend.js";

interface StateResource {
  readonly urn?: string;
  readonly type?: string;
  readonly inputs?: Record<string, unknown>;
  readonly outputs?: Record<string, unknown>;
}

/** The stack output that carries the witness's ledger from run to run (pulumi/channel-run.ts publishedLedger makes it, index.ts exports it). */
export const LEDGER_OUTPUT = "published";

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
    let pulledParentFirst: boolean | undefined;
    if (resource.type === DOCKER_IMAGE_TYPE) {
      const build = resource.inputs?.build as { args?: Record<string, unknown>; cacheFrom?: { images?: unknown } } | undefined;
      fingerprint = build?.args?.[BUILD_ARGS.fingerprint];
      inputsDigest = build?.args?.[BUILD_ARGS.inputs];
      pulledParentFirst = Array.isArray(build?.cacheFrom?.images) && build.cacheFrom.images.length > 0;
    } else if (resource.type === LAYER_IMAGE_TYPE) {
      const labels = resource.inputs?.labels as Record<string, unknown> | undefined;
      fingerprint = labels?.[FINGERPRINT_LABEL];
      inputsDigest = labels?.[INPUTS_LABEL];
    }
    const ref = resource.inputs?.imageName;
    if (typeof fingerprint === "string" && typeof ref === "string") {
      built.set(layer, { fingerprint, ref, ...(typeof inputsDigest === "string" ? { inputsDigest } : {}), ...(pulledParentFirst === undefined ? {} : { pulledParentFirst }) });
    }
  }
  return built;
}

const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);

/** The tag one resource of the state published, by its type: a build, an adoption or promotion (a registry copy), an index. */
function publishedBy(resource: StateResource): { ref: string; tag: WitnessedTag } | undefined {
  const inputs = resource.inputs ?? {};
  const digest = text(resource.outputs?.repoDigest)?.includes("@") === true ? digestOf(resource.outputs?.repoDigest as string) : undefined;
  const withDigest = digest === undefined ? {} : { digest };
  if (resource.type === DOCKER_IMAGE_TYPE || resource.type === LAYER_IMAGE_TYPE) {
    const ref = text(inputs.imageName);
    // A local-only image (push false) has an image id, not a pushed digest: it published nothing.
    if (ref === undefined || (resource.type === DOCKER_IMAGE_TYPE && inputs.skipPush === true) || (resource.type === LAYER_IMAGE_TYPE && inputs.push === false)) return undefined;
    const built = builtLayers({ resources: [resource] }, resource.type).values().next().value;
    return { ref, tag: { ...withDigest, ...(built === undefined ? {} : { fingerprint: built.fingerprint, ...(built.inputsDigest === undefined ? {} : { inputsDigest: built.inputsDigest }) }) } };
  }
  if (resource.type === COPIED_IMAGE_TYPE || resource.type === PROMOTED_IMAGE_TYPE) {
    const [registry, repository, tag] = [text(inputs.registry), text(inputs.targetRepository), text(inputs.tag)];
    if (registry === undefined || repository === undefined || tag === undefined) return undefined;
    return { ref: `${registry}/${repository}:${tag}`, tag: digest === undefined && text(inputs.digest) !== undefined ? { digest: inputs.digest as string } : withDigest };
  }
  if (resource.type === IMAGE_INDEX_TYPE) {
    const [registry, repository, tag] = [text(inputs.registry), text(inputs.repository), text(inputs.tag)];
    if (registry === undefined || repository === undefined || tag === undefined) return undefined;
    return { ref: `${registry}/${repository}:${tag}`, tag: withDigest };
  }
  return undefined;
}

/**
 * Every tag the stack has published, by reference. Pure. Two sources: the ledger in the stack's
 * `published` output (each run writes what it published on top of what it read, so a tag stays
 * witnessed after its resource left the state: a layer out of the selection, another builder, a
 * promotion since replaced), and every resource in the checkpoint that writes a tag (a run killed
 * before its outputs were written still left those: an immutable channel's engine writes the
 * checkpoint after every step, cli-run.ts checkpointEnv). A resource's fingerprint, where it has one,
 * wins; the ledger's fills in for one without (a copy) when both name the same digest.
 */
export function witnessedTags(deployment: unknown): Map<string, WitnessedTag> {
  const resources = ((deployment as { resources?: StateResource[] } | undefined)?.resources ?? []);
  const witness = new Map<string, WitnessedTag>();
  const stackResource = resources.find((resource) => resource.type === "pulumi:pulumi:Stack");
  const ledger = stackResource?.outputs?.[LEDGER_OUTPUT];
  if (typeof ledger === "object" && ledger !== null) {
    for (const [ref, entry] of Object.entries(ledger as Record<string, Record<string, unknown>>)) {
      const digest = text(entry?.digest);
      const fingerprint = text(entry?.fingerprint);
      const inputsDigest = text(entry?.inputsDigest);
      witness.set(ref, { ...(digest === undefined ? {} : { digest }), ...(fingerprint === undefined ? {} : { fingerprint }), ...(inputsDigest === undefined ? {} : { inputsDigest }) });
    }
  }
  for (const resource of resources) {
    const found = publishedBy(resource);
    if (found === undefined) continue;
    const recorded = witness.get(found.ref);
    const sameImage = recorded !== undefined && (found.tag.digest === undefined || recorded.digest === undefined || recorded.digest === found.tag.digest);
    witness.set(found.ref, sameImage ? { ...recorded, ...found.tag } : found.tag);
  }
  return witness;
}

/** What the state says was built, or why it could not be read. */
export interface StateRead {
  readonly built: Map<string, BuiltLayer>;
  /** Every tag the stack has published (witnessedTags); empty when unreadable. */
  readonly witness: StateWitness;
  /** Set when the checkpoint could not be read: then `built` is empty because nothing is known. */
  readonly unreadable?: string;
}

/**
 * The current stack's checkpoint: read from a file backend's own file when it has exactly one this
 * can read (file-backend.ts: no `pulumi stack export` process on the run's critical path), else
 * through the Pulumi CLI (the program runs under it, with its backend and stack). A stack that
 * cannot be read has an empty `built` and says why: a mutable channel then adopts what the registry
 * holds with the layers' fingerprints (the same content, nothing lost); an immutable one stops,
 * since its state is one of the two witnesses of what each tag holds (core/channel.ts).
 */
export function readBuiltLayers(stack: string, type: string, where: { project?: string; cwd?: string; env?: Readonly<Record<string, string>> } = {}): Promise<StateRead> {
  const env = { ...process.env, ...where.env };
  // In the program, the Node language host names the project in PULUMI_NODEJS_PROJECT.
  const project = where.project ?? env.PULUMI_NODEJS_PROJECT;
  const file = project === undefined ? undefined : checkpointFile(env.PULUMI_BACKEND_URL, project, stack);
  const deployment = file === undefined ? undefined : readCheckpointDeployment(file);
  if (deployment !== undefined) return Promise.resolve({ built: builtLayers(deployment, type), witness: witnessedTags(deployment) });
  return new Promise((resolve) => {
    execFile("pulumi", ["stack", "export", "--stack", stack], { cwd: where.cwd ?? process.cwd(), env, maxBuffer: 512 << 20 }, (error, stdout, stderr) => {
      if (error !== null) {
        resolve({ built: new Map(), witness: new Map(), unreadable: `pulumi stack export failed: ${stderr.trim().split("\n").pop() ?? error.message}` });
        return;
      }
      try {
        const exported = (JSON.parse(stdout) as { deployment?: unknown }).deployment;
        resolve({ built: builtLayers(exported, type), witness: witnessedTags(exported) });
      } catch (parseError) {
        resolve({ built: new Map(), witness: new Map(), unreadable: `pulumi stack export printed no JSON (${(parseError as Error).message})` });
      }
    });
  });
}
