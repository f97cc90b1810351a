/**
 * Runs preview and up through the Pulumi Automation API (the real engine) and
 * reduces the engine's event stream to what happened to each layer image.
 */
import { type EngineEvent, LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";

export const IMAGE_TYPES: ReadonlySet<string> = new Set(["strata:index:LayerImage", "strata:index:PromotedImage", "docker:index/image:Image"]);

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
    const previous = events.get(layer) ?? { layer, type, op: "same", failed: false };
    events.set(layer, { ...previous, ...change });
  };
  const onEvent = (event: EngineEvent): void => {
    const pre = event.resourcePreEvent?.metadata;
    if (pre !== undefined) update(pre.urn, pre.type, { op: pre.op });
    const outputs = event.resOutputsEvent?.metadata;
    if (outputs !== undefined) {
      const digest = outputs.new?.outputs?.repoDigest;
      update(outputs.urn, outputs.type, { op: outputs.op, ...(typeof digest === "string" ? { digestRef: digest } : {}) });
    }
    const failed = event.resOpFailedEvent?.metadata;
    if (failed !== undefined) update(failed.urn, failed.type, { op: failed.op, failed: true });
    const diagnostic = event.diagnosticEvent;
    if (diagnostic?.urn !== undefined && diagnostic.severity === "error") {
      const type = diagnostic.urn.split("::")[2]?.split("$").pop() ?? "";
      update(diagnostic.urn, type, { failed: true, error: diagnostic.message.trim() });
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

export async function upRun(stack: Stack, parallel: number): Promise<EngineRun> {
  const { events, onEvent } = eventCollector();
  try {
    // Independent branches go on when a layer fails; its descendants are skipped.
    await stack.up({ onEvent, parallel, continueOnError: true });
    return { events };
  } catch (error) {
    return { events, error: (error as Error).message };
  }
}
