/**
 * `pulumi up` run by the CLI itself, not through the Automation API: what
 * `strata up` needs is the stack and one up with an event log, and the
 * Automation API would add a CLI call of its own (`pulumi version`, about
 * 0.2 s) and, for a new stack, a failed `stack select` before `stack init`;
 * loading it costs the CLI another 0.3 s. A CI run's first patchset starts
 * on a new stack, so these count there (README *CI builds*, figures).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { type EngineRun, eventCollector } from "./events.js";
import { RUN_STACK_VARIABLE } from "./leftover-plugins.js";
import { interruptedBy, noteInterruption } from "./interruption.js";
import { ownerStore, recordOwner } from "./lock-owner.js";
import { checkpointFile } from "./file-backend.js";
import { logTail } from "./log-tail.js";
import { UserError } from "../core/problems.js";

export interface StackOptions {
  readonly projectDir: string;
  readonly stack: string;
  /** Extra environment for the program (the rest is inherited). */
  readonly env?: Record<string, string>;
}

/**
 * Runs the Pulumi CLI in the project folder; resolves with its exit code (null when a signal ended
 * it) and everything it printed. `onStart` learns the engine's pid as soon as it runs.
 */
function runPulumi(args: readonly string[], options: StackOptions, onOutput?: (text: string) => void, onStart?: (pid: number) => void): Promise<{ code: number | null; output: string }> {
  // A signal that came while an earlier engine call ran (`stack select`, done before the signal was
  // passed on) still stops the run: no later engine starts, and bin/strata.js ends by that signal.
  const interruption = interruptedBy();
  if (interruption !== undefined) return Promise.reject(new UserError(`${interruption} received: pulumi ${args[0] ?? ""} was not started (the run stops here)`));
  return new Promise((resolve, reject) => {
    let output = "";
    // --event-log exists only with PULUMI_DEBUG_COMMANDS (the Automation API sets it the same way).
    // STRATA_RUN_STACK: inherited by every plugin the engine starts, so strata recover can tell a killed run's leftovers.
    const child = spawn("pulumi", args, { cwd: options.projectDir, env: { ...process.env, ...options.env, PULUMI_DEBUG_COMMANDS: "true", PULUMI_SKIP_UPDATE_CHECK: "true", [RUN_STACK_VARIABLE]: options.stack }, stdio: ["ignore", "pipe", "pipe"] });
    const forward = (chunk: Buffer): void => {
      const text = chunk.toString();
      output += text;
      onOutput?.(text);
    };
    child.stdout.on("data", forward);
    child.stderr.on("data", forward);
    const stopSignals = passSignalsOn(child, () => output);
    child.on("error", (error) => {
      stopSignals();
      reject(error);
    });
    if (child.pid !== undefined) onStart?.(child.pid);
    child.on("close", (exitCode) => {
      stopSignals();
      resolve({ code: exitCode, output });
    });
  });
}

/** What the engine prints for each SIGINT or SIGTERM that reached it (Pulumi's cancellation scope). */
const ENGINE_ACKNOWLEDGED = /^(?:\x1b\[[0-9;]*m)*(\^C|SIGTERM) received; (cancelling|terminating)/gm;

/** How long the engine has to say a signal reached it before `strata up` passes it on. */
export const ACKNOWLEDGE_MS = 5000;
/** How often `strata up` looks for the engine's "received" line while it waits for one. */
const ACKNOWLEDGE_POLL_MS = 100;

/**
 * While the engine runs, Ctrl-C and SIGTERM do not end this process. Left to Node's default, they
 * ended it at once; the engine, cancelling as the same signal asked (the terminal's or a CI job's
 * signal reaches the whole process group), then wrote its "cancelling" line to a pipe nobody read
 * and died of SIGPIPE before it could write the state and release its lock. Now the engine closes
 * in its own time and `strata up` ends when it has, by that signal (interruptedBy). A signal sent to
 * this process alone (`kill <pid>`) never reached the engine: when, five seconds after a signal,
 * the engine has said fewer "received" lines than signals came, the missing ones are passed on
 * (one at a time), and every later one at once (a second one makes Pulumi terminate without waiting, as it does in
 * a terminal). A reader of this process's output that went away with the signal (`| tee` in the
 * terminal) must not end it either: bin/strata.js ignores EPIPE on its output.
 */
export function passSignalsOn(child: ChildProcess, output: () => string): () => void {
  let received = 0;
  /** Signals this process sent the engine: each one reaches it (only a pending one can absorb another), said or not. */
  let passed = 0;
  /** What the engine had said it received when passing on began: those and the ones passed on since are delivered. */
  let acknowledgedAtPassOn = 0;
  let passOn = false;
  const timers: NodeJS.Timeout[] = [];
  const acknowledged = (): number => (output().match(ENGINE_ACKNOWLEDGED) ?? []).length;
  /** Signals that came while the engine runs, that it has not said it received, and that were not passed on. */
  const missing = (): boolean => child.exitCode === null && child.signalCode === null && received > Math.max(acknowledged(), acknowledgedAtPassOn + passed);
  const onSignal = (signal: NodeJS.Signals): void => {
    received += 1;
    noteInterruption(signal);
    if (passOn) {
      passed += 1;
      child.kill(signal);
      return;
    }
    // One at a time: two signals sent together may arrive as one (a pending signal is not queued
    // twice). The next goes once the engine has said it received the last, or has been silent for
    // ACKNOWLEDGE_MS. A signal passed on is never sent again: a loaded machine's slow "cancelling"
    // line would make it two, and Pulumi would terminate without writing its state.
    const sendMissing = (): void => {
      if (!missing()) return;
      passed += 1;
      child.kill(signal);
      const before = acknowledged();
      const sentAt = Date.now();
      const awaitAcknowledgement = (): void => {
        if (acknowledged() > before || Date.now() - sentAt >= ACKNOWLEDGE_MS) sendMissing();
        else timers.push(setTimeout(awaitAcknowledgement, ACKNOWLEDGE_POLL_MS));
      };
      timers.push(setTimeout(awaitAcknowledgement, ACKNOWLEDGE_POLL_MS));
    };
    timers.push(setTimeout(() => {
      if (passOn || !missing()) return;
      passOn = true;
      acknowledgedAtPassOn = acknowledged();
      sendMissing();
    }, ACKNOWLEDGE_MS));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    for (const timer of timers) clearTimeout(timer);
  };
}

/**
 * Makes sure the stack exists: `pulumi up --stack` needs nothing selected, so a stack whose
 * checkpoint a file backend shows is used as it is (the `stack select` it saves is about 0.3 s of a
 * no-op run); otherwise it is selected, and created when it does not exist yet (one CLI call).
 */
export async function ensureStack(options: StackOptions & { readonly project: string }): Promise<void> {
  if (checkpointFile(options.env?.PULUMI_BACKEND_URL ?? process.env.PULUMI_BACKEND_URL, options.project, options.stack) !== undefined) return;
  const { code, output } = await runPulumi(["stack", "select", "--create", "--stack", options.stack, "--non-interactive"], options);
  if (code !== 0) throw new Error(`pulumi stack select --create --stack ${options.stack} failed:\n${output.trim()}`);
}

/**
 * The engine's state writes during `up`. Pulumi writes the whole checkpoint (and its `.bak`) at the
 * start and end of every step: at 200 layers that was about half the Pulumi engine's CPU in a cold
 * run (README *Performance*, "The Pulumi side and the registry"; bench/results/2026-12-03-checkpoints-*-n200.json). On a channel whose tags may move (dev, a CI run's
 * stack) the engine writes it once, as the run ends (Pulumi's PULUMI_SKIP_CHECKPOINTS): after a
 * failed step, and after Ctrl-C or SIGTERM (runPulumi keeps Strata alive until the engine has
 * closed), everything is recorded; after a kill (SIGKILL, a lost machine) nothing of that run is,
 * and the next `up` adopts from the registry what it pushed (each layer carries its fingerprint)
 * and finds the signatures it wrote. An immutable channel keeps a write after every step: its
 * state is one of the two witnesses of every tag it published (core/channel.ts), and a tag pushed
 * by a killed run must be witnessed even when the registry later answers that it is not there, so
 * a PULUMI_SKIP_CHECKPOINTS=true in the caller's environment does not turn that off; on any other
 * channel the caller's own PULUMI_SKIP_CHECKPOINTS wins.
 */
export function checkpointEnv(env: Readonly<Record<string, string | undefined>>, everyStep: boolean): Record<string, string> {
  if (everyStep) return { PULUMI_SKIP_CHECKPOINTS: "false" };
  return env.PULUMI_SKIP_CHECKPOINTS !== undefined ? {} : { PULUMI_SKIP_CHECKPOINTS: "true" };
}

export interface UpOptions extends StackOptions {
  /** The Pulumi project's name: the owner record of the run's lock is filed under it. */
  readonly project: string;
  readonly parallel: number;
  /** Receives the engine's own progress output as it comes. */
  readonly progress?: (text: string) => void;
  /** The engine writes the state after every step, not only as the run ends (checkpointEnv). */
  readonly checkpointEveryStep: boolean;
}

/**
 * `pulumi up` with an event log, read back into per-layer events. Stack.up()
 * would also read the stack's outputs and history after every run, two more
 * CLI calls (about 2 s at 200 layers) that `strata up` does not need.
 */
export async function upRun(options: UpOptions): Promise<EngineRun> {
  const scratch = mkdtempSync(path.join(tmpdir(), "strata-up-"));
  const eventLog = path.join(scratch, "events.jsonl");
  try {
    const args = ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", options.stack, "--parallel", String(options.parallel),
      // Independent branches go on when a layer fails; its descendants are skipped.
      "--continue-on-error", "--event-log", eventLog];
    const { events, stackLayers, onEvent } = eventCollector();
    // The log is read as the engine writes it, so each event gets this clock's time to the 0.1 s
    // (the engine's own timestamps are whole seconds): that is what the per-layer timings are.
    const tail = logTail(eventLog, (line, receivedAt) => onEvent(JSON.parse(line) as EngineEvent, receivedAt));
    const poller = setInterval(tail, 100);
    // Who owns the lock the engine takes (lock-owner.ts): written as it starts, removed when it ends on
    // its own (it released the lock); a signal's end leaves it for strata recover to read.
    let owner: Promise<Awaited<ReturnType<typeof recordOwner>>> | undefined;
    const store = ownerStore(options.env?.PULUMI_BACKEND_URL ?? process.env.PULUMI_BACKEND_URL, { ...process.env, ...options.env });
    const { code, output } = await runPulumi(args, { ...options, env: { ...options.env, ...checkpointEnv({ ...process.env, ...options.env }, options.checkpointEveryStep) } }, options.progress, (pid) => {
      owner = recordOwner(store, options.project, options.stack, pid).then((recorded) => {
        if ("failed" in recorded) options.progress?.(`note: strata could not record who owns this run's lock (${recorded.failed}); if this run is killed, strata recover will need --force\n`);
        return recorded;
      });
    }).finally(() => clearInterval(poller));
    const recorded = await owner;
    if (recorded !== undefined && "remove" in recorded && code !== null) await recorded.remove().catch(() => undefined);
    // What the engine wrote last (no log at all: the engine did not get far enough; its output says why).
    tail();
    return code === 0 ? { events, stackLayers } : { events, stackLayers, error: output.trim().split("\n").slice(-40).join("\n") };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
