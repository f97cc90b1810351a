/**
 * Runs preview and up through the Pulumi Automation API (the real engine) and
 * reduces the engine's event stream to what happened to each layer image.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { tmpdir } from "node:os";
import path from "node:path";
import { type EngineEvent, LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";
import { CI_COPY_SET_TYPE, IMAGE_TYPES } from "../core/image-types.js";


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
const WORKING_OPS = new Set(["create", "update", "replace", "create-replacement"]);

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

export interface EngineRun {
  readonly events: ReadonlyMap<string, LayerEvent>;
  /** Set when the operation as a whole failed. */
  readonly error?: string;
}

const layerOf = (urn: string): string => urn.split("::").pop() ?? urn;

/** Collects per-layer events from an engine event stream. */
export function eventCollector(): { events: Map<string, LayerEvent>; onEvent: (event: EngineEvent, receivedAt?: number) => void } {
  const events = new Map<string, LayerEvent>();
  /** The layers of each CI copy set, by its URN (from its step's inputs). */
  const copySets = new Map<string, string[]>();
  /** The layers a resource stands for: a copy set's, or the one its URN names. */
  const layersOf = (urn: string): readonly string[] => copySets.get(urn) ?? [layerOf(urn)];
  const update = (urn: string, type: string, change: Partial<LayerEvent>, layer: string = layerOf(urn)): void => {
    if (!IMAGE_TYPES.has(type) && type !== CI_COPY_SET_TYPE) return;
    const recorded = events.get(layer);
    // A layer whose image resource changed type (a docker.Image replaced by the CopiedImage that
    // adopts it, or back): the engine creates the new resource, and deletes the old one at the end.
    // The layer's story is the new resource's; the old one's delete is housekeeping.
    if (recorded !== undefined && recorded.type !== type) {
      if (change.op === "delete" || recorded.op !== "delete") return;
      events.set(layer, { layer, type, op: "same", failed: false, ...change });
      return;
    }
    events.set(layer, { ...(recorded ?? { layer, type, op: "same", failed: false }), ...change });
  };
  // The engine's own timestamps are whole seconds: a caller that reads events as they come passes its clock.
  const onEvent = (event: EngineEvent, receivedAt: number = event.timestamp * 1000): void => {
    const timed = (urn: string, change: Partial<LayerTiming>, layer: string = layerOf(urn)): { timing?: LayerTiming } => {
      const previous = events.get(layer)?.timing;
      if (previous === undefined && change.startedAt === undefined) return {};
      return { timing: { ...(previous as LayerTiming), ...change } };
    };
    const pre = event.resourcePreEvent?.metadata;
    if (pre !== undefined) {
      // A CI copy set stands for every layer it copies (its step's inputs name them): each gets the set's step.
      if (pre.type === CI_COPY_SET_TYPE) {
        const copies = ((pre.new ?? pre.old)?.inputs as { copies?: { layer: string }[] } | undefined)?.copies ?? [];
        copySets.set(pre.urn, copies.map((copy) => copy.layer));
      }
      for (const layer of layersOf(pre.urn)) update(pre.urn, pre.type, { op: pre.op, ...(WORKING_OPS.has(pre.op) ? { timing: { startedAt: receivedAt } } : {}) }, layer);
    }
    const outputs = event.resOutputsEvent?.metadata;
    if (outputs !== undefined) {
      const produced = outputs.new?.outputs;
      for (const layer of layersOf(outputs.urn)) {
        const digest = outputs.type === CI_COPY_SET_TYPE ? (produced?.repoDigests as Record<string, unknown> | undefined)?.[layer] : produced?.repoDigest;
        update(outputs.urn, outputs.type, { op: outputs.op, ...(typeof digest === "string" ? { digestRef: digest } : {}), ...timed(outputs.urn, { finishedAt: receivedAt }, layer) }, layer);
      }
    }
    const failed = event.resOpFailedEvent?.metadata;
    if (failed !== undefined) {
      for (const layer of layersOf(failed.urn)) update(failed.urn, failed.type, { op: failed.op, failed: true }, layer);
    }
    const diagnostic = event.diagnosticEvent;
    if (diagnostic?.urn !== undefined) {
      const type = diagnostic.urn.split("::")[2]?.split("$").pop() ?? "";
      if (diagnostic.severity === "error") {
        for (const layer of layersOf(diagnostic.urn)) update(diagnostic.urn, type, { failed: true, error: diagnostic.message.trim() }, layer);
      } else if (diagnostic.severity === "info" && IMAGE_TYPES.has(type)) {
        const previous = events.get(layerOf(diagnostic.urn))?.output ?? [];
        const phase = diagnostic.message.includes("Starting Docker build") ? timed(diagnostic.urn, { buildStartedAt: receivedAt })
          : diagnostic.message.includes("Pushing Image to the registry") ? timed(diagnostic.urn, { pushStartedAt: receivedAt }) : {};
        update(diagnostic.urn, type, { output: [...previous, ...progressLines(diagnostic.message)].slice(-OUTPUT_LINES), ...phase });
      }
    }
  };
  return { events, onEvent };
}

export interface StackOptions {
  readonly projectDir: string;
  readonly stack: string;
  /** Extra environment for the program (the rest is inherited). */
  readonly env?: Record<string, string>;
}

export async function openStack(options: StackOptions): Promise<Stack> {
  return LocalWorkspace.createOrSelectStack({ stackName: options.stack, workDir: options.projectDir }, { envVars: options.env ?? {} });
}

/** The stack's `layers` output as last recorded; empty for a new stack. */
export async function previousLayers<T>(stack: Stack): Promise<Record<string, T>> {
  const outputs = await stack.outputs();
  return (outputs.layers?.value ?? {}) as Record<string, T>;
}

export async function previewRun(stack: Stack): Promise<EngineRun> {
  const { events, onEvent } = eventCollector();
  try {
    await stack.preview({ onEvent });
    return { events };
  } catch (error) {
    return { events, error: (error as Error).message };
  }
}

export interface UpOptions extends StackOptions {
  readonly parallel: number;
  /** Receives the engine's own progress output as it comes. */
  readonly progress?: (text: string) => void;
}

/** Reads the complete lines a growing file gained since the last call. */
function logTail(file: string, onLine: (line: string, receivedAt: number) => void): () => void {
  let offset = 0;
  let partial = "";
  // A character split across two reads is held back until its last byte comes.
  const decoder = new StringDecoder("utf8");
  return () => {
    let descriptor: number;
    try {
      descriptor = openSync(file, "r");
    } catch {
      return; // not written yet
    }
    try {
      const buffer = Buffer.alloc(1 << 20);
      const now = Date.now();
      for (let read = readSync(descriptor, buffer, 0, buffer.length, offset); read > 0; read = readSync(descriptor, buffer, 0, buffer.length, offset)) {
        offset += read;
        partial += decoder.write(buffer.subarray(0, read));
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line.trim() !== "") onLine(line, now);
      }
    } finally {
      closeSync(descriptor);
    }
  };
}

/**
 * `pulumi up` with an event log, read back into per-layer events. The CLI is
 * run directly rather than through Stack.up(): that one also reads the stack's
 * outputs and history after every run, two more CLI calls (about 2 s at 200
 * layers) that `strata up` does not need.
 */
export async function upRun(options: UpOptions): Promise<EngineRun> {
  const scratch = mkdtempSync(path.join(tmpdir(), "strata-up-"));
  const eventLog = path.join(scratch, "events.jsonl");
  try {
    const args = ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", options.stack, "--parallel", String(options.parallel),
      // Independent branches go on when a layer fails; its descendants are skipped.
      "--continue-on-error", "--event-log", eventLog];
    let output = "";
    const { events, onEvent } = eventCollector();
    // The log is read as the engine writes it, so each event gets this clock's time to the 0.1 s
    // (the engine's own timestamps are whole seconds): that is what the per-layer timings are.
    const tail = logTail(eventLog, (line, receivedAt) => onEvent(JSON.parse(line) as EngineEvent, receivedAt));
    const poller = setInterval(tail, 100);
    const code = await new Promise<number>((resolve, reject) => {
      // --event-log exists only with PULUMI_DEBUG_COMMANDS (the Automation API sets it the same way).
      const child = spawn("pulumi", args, { cwd: options.projectDir, env: { ...process.env, ...options.env, PULUMI_DEBUG_COMMANDS: "true" }, stdio: ["ignore", "pipe", "pipe"] });
      const forward = (chunk: Buffer): void => {
        const text = chunk.toString();
        output += text;
        options.progress?.(text);
      };
      child.stdout.on("data", forward);
      child.stderr.on("data", forward);
      child.on("error", reject);
      child.on("close", (exitCode) => resolve(exitCode ?? 1));
    }).finally(() => clearInterval(poller));
    // What the engine wrote last (no log at all: the engine did not get far enough; its output says why).
    tail();
    return code === 0 ? { events } : { events, error: output.trim().split("\n").slice(-40).join("\n") };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
