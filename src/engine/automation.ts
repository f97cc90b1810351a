/**
 * Preview and stack reads through the Pulumi Automation API (the real
 * engine). `strata up` runs the CLI itself (cli-run.ts says why).
 */
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";
import { type EngineRun, eventCollector } from "./events.js";
import { type StackOptions } from "./cli-run.js";

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

