/**
 * Runs preview and up through the Pulumi Automation API (the real engine) and
 * reduces the engine's event stream to what happened to each layer image.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type EngineEvent, LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";
import { IMAGE_TYPES } from "../core/image-types.js";
import { COPY_TAG_ANNOTATION } from "../core/ci-build.js";


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
  /** A CopiedImage that copies another tag's image to this layer's CI tag (its inputs carry the copy annotation). */
  readonly ciCopy?: boolean;
  /** The last lines the provider reported while working on it (a build's own output), for a failure's context. */
  readonly output?: readonly string[];
}

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
export function eventCollector(): { events: Map<string, LayerEvent>; onEvent: (event: EngineEvent) => void } {
  const events = new Map<string, LayerEvent>();
  const update = (urn: string, type: string, change: Partial<LayerEvent>): void => {
    if (!IMAGE_TYPES.has(type)) return;
    const layer = layerOf(urn);
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
  const onEvent = (event: EngineEvent): void => {
    const pre = event.resourcePreEvent?.metadata;
    if (pre !== undefined) {
      const annotations = (pre.new?.inputs as { annotations?: Record<string, unknown> } | undefined)?.annotations;
      update(pre.urn, pre.type, { op: pre.op, ...(annotations?.[COPY_TAG_ANNOTATION] === undefined ? {} : { ciCopy: true }) });
    }
    const outputs = event.resOutputsEvent?.metadata;
    if (outputs !== undefined) {
      const digest = outputs.new?.outputs?.repoDigest;
      update(outputs.urn, outputs.type, { op: outputs.op, ...(typeof digest === "string" ? { digestRef: digest } : {}) });
    }
    const failed = event.resOpFailedEvent?.metadata;
    if (failed !== undefined) update(failed.urn, failed.type, { op: failed.op, failed: true });
    const diagnostic = event.diagnosticEvent;
    if (diagnostic?.urn !== undefined) {
      const type = diagnostic.urn.split("::")[2]?.split("$").pop() ?? "";
      if (diagnostic.severity === "error") {
        update(diagnostic.urn, type, { failed: true, error: diagnostic.message.trim() });
      } else if (diagnostic.severity === "info" && IMAGE_TYPES.has(type)) {
        const previous = events.get(layerOf(diagnostic.urn))?.output ?? [];
        update(diagnostic.urn, type, { output: [...previous, ...progressLines(diagnostic.message)].slice(-OUTPUT_LINES) });
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
    });
    const { events, onEvent } = eventCollector();
    let log = "";
    try {
      log = readFileSync(eventLog, "utf8");
    } catch {
      // No log: the engine did not get far enough to write one; the output says why.
    }
    for (const line of log.split("\n")) if (line.trim() !== "") onEvent(JSON.parse(line) as EngineEvent);
    return code === 0 ? { events } : { events, error: output.trim().split("\n").slice(-40).join("\n") };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
