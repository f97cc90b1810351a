/**
 * The engine's event stream (`pulumi up --event-log`, or the Automation API's
 * onEvent) reduced to what happened to each layer image.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { CI_COPY_SET_TYPE, IMAGE_ATTESTATIONS_SET_TYPE, IMAGE_INDEX_TYPE, IMAGE_TYPES } from "../core/image-types.js";
import { imagesToSign } from "../core/attestation-steps.js";

/** What the engine did to one layer's image resource. */
export interface LayerEvent {
  readonly layer: string;
  readonly type: string;
  /** The step: `same`, `create`, `update`, `delete`, … */
  readonly op: string;
  /** `repo@sha256:…` once the step produced outputs. */
  readonly digestRef?: string;
  readonly failed: boolean;
  readonly error?: string;
  /** When its step started and ended, and the docker.Image phases in between (ms since the epoch). */
  readonly timing?: LayerTiming;
  /** The last lines the provider reported while working on it (a build's own output), for a failure's context. */
  readonly output?: readonly string[];
  /** Everything the provider reported for it (its whole build and push output, errors included), each line with its time. */
  readonly log?: readonly LogLine[];
  /** An image index the tag held already, byte for byte (Strata's provider wrote nothing: its `created` output is false). */
  readonly heldAlready?: boolean;
  /** The inputs whose change made the engine update it (the engine's diff keys). */
  readonly changedInputs?: readonly string[];
  /** A signing stack: what its `strata:index:ImageAttestationsSet`'s step did to its image (for an index layer, the index). */
  readonly attestation?: AttestationEvent;
}

/** What the engine did to one image's signature and attestations (its entry in the ImageAttestationsSet). */
export interface AttestationEvent {
  /** `create`: its digest was new to its set in this run (signed now, or found signed and attested: signedBefore); `same`: signed by an earlier run. */
  readonly op: string;
  readonly failed: boolean;
  /** `repo:sha256-<hex>.sig` */
  readonly signature?: string;
  /** `repo:sha256-<hex>.att`, holding the SPDX SBOM (and the provenance beside it). */
  readonly sbom?: string;
  readonly provenance?: string;
  /** Packages in its SBOM. */
  readonly packages?: number;
  /** Of those, the ones the image it was made on has not (by purl): what the layer added. */
  readonly packagesAdded?: number;
  /**
   * With `create`: its signature and attestations by this key were in the registry before the step
   * (an image an earlier run signed): nothing written. For a multi-platform layer, true only when
   * that holds for the index and each platform image. Absent with `same`.
   */
  readonly signedBefore?: boolean;
}

export interface LogLine {
  /** ms since the epoch. */
  readonly at: number;
  readonly text: string;
}

export interface LayerTiming {
  readonly startedAt: number;
  /** docker.Image: after the pull of its cacheFrom images ("Starting Docker build"). */
  readonly buildStartedAt?: number;
  /** docker.Image: "Pushing Image to the registry". */
  readonly pushStartedAt?: number;
  readonly finishedAt?: number;
}

/** Steps that do work on a layer (as opposed to same, read, delete). */
export const WORKING_OPS: ReadonlySet<string> = new Set(["create", "update", "replace", "create-replacement"]);

/** How many of a layer's last progress lines are kept. */
const OUTPUT_LINES = 15;

/**
 * Progress lines worth showing from docker.Image's status messages. Its
 * BuildKit trace arrives as "digest: …" plus the step name, then the step's
 * own output; the digests say nothing to a reader.
 */
function progressLines(message: string): string[] {
  return message.split("\n").map((line) => line.trimEnd()).filter((line) => line.trim() !== "" && !line.startsWith("digest: "));
}

/** A diagnostic's lines for a layer's log: every non-blank line, warnings and errors marked. */
function logLines(message: string, at: number, severity: string): LogLine[] {
  const mark = severity === "info" || severity === "info#err" ? "" : `${severity}: `;
  return message.split("\n").map((line) => line.trimEnd()).filter((line) => line.trim() !== "").map((text) => ({ at, text: `${mark}${text}` }));
}

/** What the stack's `layers` output says of a layer at the end of the run. */
export interface StackLayerOutput {
  readonly fingerprint?: string;
  readonly digestRef?: string;
}

export interface EngineRun {
  readonly events: ReadonlyMap<string, LayerEvent>;
  /** The stack's `layers` output as the run left it (from the stack's own outputs event). */
  readonly stackLayers?: ReadonlyMap<string, StackLayerOutput>;
  /** Set when the operation as a whole failed. */
  readonly error?: string;
}

const layerOf = (urn: string): string => urn.split("::").pop() ?? urn;

/** Collects per-layer events from an engine event stream. */
export function eventCollector(): { events: Map<string, LayerEvent>; stackLayers: Map<string, StackLayerOutput>; programWarnings: string[]; onEvent: (event: EngineEvent, receivedAt?: number) => void } {
  const events = new Map<string, LayerEvent>();
  /** The program's own warnings (pulumi.log.warn without a resource, or on the stack): `blocked: …`, `refused: …`. */
  const programWarnings: string[] = [];
  const stackLayers = new Map<string, StackLayerOutput>();
  /** The layers of each CI copy set, by its URN (from its step's inputs). */
  const copySets = new Map<string, string[]>();
  /** The layers a resource stands for: a copy set's, or the one its URN names. */
  const layersOf = (urn: string): readonly string[] => copySets.get(urn) ?? [layerOf(urn)];
  /**
   * What the attestation set's step did, by image name (a layer's, or `layer/os-arch` for a
   * platform's image in its index's repository). Kept apart, and joined to a layer's event only once
   * the layer has one: an attestation alone must never make a layer the run did not reach look reached.
   */
  const attestations = new Map<string, AttestationEvent>();
  /** The images of each set's step by its URN, from its inputs: a failed step leaves every one of them unknown. */
  const attestationNames = new Map<string, readonly string[]>();
  /** A multi-platform layer's platform images (`layer/os-arch`) in the sets, by the layer. */
  const platformImages = new Map<string, Set<string>>();
  /**
   * A layer's attestation as its row tells it: its own image's (an index's), joined with its
   * platform images', which are signed in the index's repository too: the run signed the layer when
   * it signed any of them, and signed it before only when it wrote nothing for any.
   */
  const attestationOf = (layer: string): AttestationEvent | undefined => {
    const own = attestations.get(layer);
    const platforms = [...(platformImages.get(layer) ?? [])].flatMap((name) => attestations.get(name) ?? []);
    if (own === undefined || platforms.length === 0) return own;
    const all = [own, ...platforms];
    const signing = all.filter((entry) => entry.op !== "same");
    // When none is signing, all are `same`, which carry no signedBefore (attest drops it).
    return {
      ...own,
      op: signing.length === 0 ? own.op : "create",
      failed: all.some((entry) => entry.failed),
      ...(signing.length === 0 ? {} : { signedBefore: signing.every((entry) => entry.signedBefore === true) }),
    };
  };
  const attest = (name: string, change: Partial<AttestationEvent>): void => {
    const merged: AttestationEvent = { ...(attestations.get(name) ?? { op: "same", failed: false }), ...change };
    // An image an earlier run's set signed: what the state says of that run's write is not this run's.
    const { signedBefore: _stateWord, ...withoutWord } = merged;
    attestations.set(name, merged.op === "same" ? withoutWord : merged);
    const slash = name.indexOf("/");
    const layer = slash < 0 ? name : name.slice(0, slash);
    if (slash >= 0) platformImages.set(layer, (platformImages.get(layer) ?? new Set()).add(name));
    const recorded = events.get(layer);
    const attestation = attestationOf(layer);
    if (recorded !== undefined && attestation !== undefined) events.set(layer, { ...recorded, attestation });
  };
  const update = (urn: string, type: string, change: Partial<LayerEvent>, layer: string = layerOf(urn)): void => {
    if (!IMAGE_TYPES.has(type) && type !== CI_COPY_SET_TYPE) return;
    const pending = attestationOf(layer);
    const recorded = events.get(layer);
    // A layer whose image resource changed type (a docker.Image replaced by the CopiedImage that
    // adopts it, or back): the engine creates the new resource, and deletes the old one at the end.
    // The layer's story is the new resource's; the old one's delete is housekeeping.
    if (recorded !== undefined && recorded.type !== type) {
      if (change.op === "delete" || recorded.op !== "delete") return;
      events.set(layer, { layer, type, op: "same", failed: false, ...change, ...(pending === undefined ? {} : { attestation: pending }) });
      return;
    }
    events.set(layer, { ...(recorded ?? { layer, type, op: "same", failed: false }), ...change, ...(pending === undefined ? {} : { attestation: pending }) });
  };
  // The engine's own timestamps are whole seconds: a caller that reads events as they come passes its clock.
  const onEvent = (event: EngineEvent, receivedAt: number = event.timestamp * 1000): void => {
    const timed = (urn: string, change: Partial<LayerTiming>, layer: string = layerOf(urn)): { timing?: LayerTiming } => {
      const previous = events.get(layer)?.timing;
      if (previous === undefined && change.startedAt === undefined) return {};
      return { timing: { ...(previous as LayerTiming), ...change } };
    };
    // A set's step: each image is signed in it when its digest is new to the set (core/attestation-steps.ts).
    const pre = event.resourcePreEvent?.metadata;
    if (pre?.type === IMAGE_ATTESTATIONS_SET_TYPE) {
      const inputs = pre.new?.inputs ?? {};
      const signing = new Set(imagesToSign(pre.old?.outputs ?? {}, inputs));
      const names = Object.keys((inputs.images ?? {}) as Record<string, unknown>);
      attestationNames.set(pre.urn, names);
      for (const name of names) attest(name, { op: signing.has(name) ? "create" : "same" });
    }
    const attested = event.resOutputsEvent?.metadata;
    // Whether each image was signed in the step, its pre-event said; its outputs say where.
    if (attested?.type === IMAGE_ATTESTATIONS_SET_TYPE) {
      for (const [name, entry] of Object.entries((attested.new?.outputs?.attested ?? {}) as Record<string, Record<string, unknown> | undefined>)) attest(name, attestationOutputs(entry));
    }
    const attestFailed = event.resOpFailedEvent?.metadata;
    if (attestFailed?.type === IMAGE_ATTESTATIONS_SET_TYPE) for (const name of attestationNames.get(attestFailed.urn) ?? []) attest(name, { failed: true });
    if (pre !== undefined) {
      // A CI copy set stands for every layer it copies (its step's inputs name them): each gets the set's step.
      if (pre.type === CI_COPY_SET_TYPE) {
        const copies = ((pre.new ?? pre.old)?.inputs as { copies?: { layer: string }[] } | undefined)?.copies ?? [];
        copySets.set(pre.urn, copies.map((copy) => copy.layer));
      }
      const diffs = pre.diffs ?? [];
      for (const layer of layersOf(pre.urn)) update(pre.urn, pre.type, { op: pre.op, ...(WORKING_OPS.has(pre.op) ? { timing: { startedAt: receivedAt } } : {}), ...(diffs.length > 0 ? { changedInputs: diffs } : {}) }, layer);
    }
    const outputs = event.resOutputsEvent?.metadata;
    if (outputs?.type === "pulumi:pulumi:Stack") {
      const layers = (outputs.new?.outputs?.layers ?? {}) as Record<string, { fingerprint?: unknown; digestRef?: unknown }>;
      for (const [layer, output] of Object.entries(layers)) {
        stackLayers.set(layer, { ...(typeof output?.fingerprint === "string" ? { fingerprint: output.fingerprint } : {}), ...(typeof output?.digestRef === "string" ? { digestRef: output.digestRef } : {}) });
      }
    }
    if (outputs !== undefined) {
      const produced = outputs.new?.outputs;
      for (const layer of layersOf(outputs.urn)) {
        const digest = outputs.type === CI_COPY_SET_TYPE ? (produced?.repoDigests as Record<string, unknown> | undefined)?.[layer] : produced?.repoDigest;
        const held = outputs.type === IMAGE_INDEX_TYPE && produced?.created === false ? { heldAlready: true } : {};
        update(outputs.urn, outputs.type, { op: outputs.op, ...(typeof digest === "string" ? { digestRef: digest } : {}), ...held, ...timed(outputs.urn, { finishedAt: receivedAt }, layer) }, layer);
      }
    }
    const failed = event.resOpFailedEvent?.metadata;
    if (failed !== undefined) {
      // A failed step ends here: its time on the timeline is the time until it failed.
      for (const layer of layersOf(failed.urn)) update(failed.urn, failed.type, { op: failed.op, failed: true, ...timed(failed.urn, { finishedAt: receivedAt }, layer) }, layer);
    }
    const diagnostic = event.diagnosticEvent;
    if (diagnostic?.severity === "warning" && (diagnostic.urn === undefined || diagnostic.urn === "" || diagnostic.urn.includes("::pulumi:pulumi:Stack::"))) {
      programWarnings.push(diagnostic.message.trim());
    }
    if (diagnostic?.urn !== undefined) {
      const type = diagnostic.urn.split("::")[2]?.split("$").pop() ?? "";
      const logged = (layer: string): { log: LogLine[] } => ({ log: [...(events.get(layer)?.log ?? []), ...logLines(diagnostic.message, receivedAt, diagnostic.severity)] });
      if (diagnostic.severity === "error") {
        for (const layer of layersOf(diagnostic.urn)) update(diagnostic.urn, type, { failed: true, error: diagnostic.message.trim(), ...(IMAGE_TYPES.has(type) ? logged(layer) : {}) }, layer);
      } else if (IMAGE_TYPES.has(type)) {
        const layer = layerOf(diagnostic.urn);
        const previous = events.get(layer)?.output ?? [];
        const phase = diagnostic.message.includes("Starting Docker build") ? timed(diagnostic.urn, { buildStartedAt: receivedAt })
          : diagnostic.message.includes("Pushing Image to the registry") ? timed(diagnostic.urn, { pushStartedAt: receivedAt }) : {};
        const progress = diagnostic.severity === "info" ? { output: [...previous, ...progressLines(diagnostic.message)].slice(-OUTPUT_LINES) } : {};
        update(diagnostic.urn, type, { ...progress, ...phase, ...logged(layer) });
      }
    }
  };
  return { events, stackLayers, programWarnings, onEvent };
}

/** What the set's outputs say of one image: where its signature and SBOM are; what is not of its type is left out. */
function attestationOutputs(outputs: Record<string, unknown> | undefined): Partial<AttestationEvent> {
  const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);
  const [signature, sbom, provenance] = [text(outputs?.signature), text(outputs?.sbom), text(outputs?.provenance)];
  return {
    ...(signature === undefined ? {} : { signature }),
    ...(sbom === undefined ? {} : { sbom }),
    ...(provenance === undefined ? {} : { provenance }),
    ...(typeof outputs?.packages === "number" ? { packages: outputs.packages } : {}),
    ...(typeof outputs?.packagesAdded === "number" ? { packagesAdded: outputs.packagesAdded } : {}),
    ...(typeof outputs?.signedBefore === "boolean" ? { signedBefore: outputs.signedBefore } : {}),
  };
}

/**
 * What the engine said went wrong, for a person: its `error:` diagnostics (a program's RunError is
 * one, its message the whole paragraph with the fix, the lines after its first indented below it),
 * without the engine's closing "preview failed" lines or the Automation API's command dump; the
 * output's last lines when it said none.
 */
export function engineErrorText(output: string): string {
  const lines = output.split("\n");
  const said: string[] = [];
  for (let at = 0; at < lines.length; at++) {
    const match = /^(\s*)error: (.*)$/.exec(lines[at] as string);
    const head = match?.[2]?.trim();
    if (match === null || head === undefined || head === "" || /^(preview|update) failed$/.test(head)) continue;
    const indent = (match[1] as string).length;
    const paragraph = [head];
    // A multi-line message (a list of problems) continues on its next lines, up to a blank one: the
    // engine prints them at the indent of its `error:` (and a problem's `fix:` deeper).
    const continues = (line: string | undefined): line is string => line !== undefined && line.trim() !== "" && line.length - line.trimStart().length >= indent && !/^\s*(error|warning|info(\+\d+)?): /.test(line);
    while (continues(lines[at + 1])) paragraph.push((lines[++at] as string).trim());
    said.push(paragraph.join("\n"));
  }
  const distinct = [...new Set(said)];
  return distinct.length > 0 ? distinct.join("\n") : output.trim().split("\n").slice(-10).join("\n");
}
