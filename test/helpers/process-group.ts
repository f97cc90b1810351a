/**
 * A process started as the leader of a process group of its own, so a test can signal everything
 * it started (`strata up`'s pulumi and plugins, Chromium's helpers) and read what it printed.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { processState } from "../../src/engine/recover.js";

export interface GroupRun {
  /** The group leader's pid (= the process group id); undefined when the spawn itself failed. */
  readonly pid: number | undefined;
  /** What it has printed so far (its last `keepChars` characters). */
  output(): string;
  /** Signals every process of the group, the leader's children included; a group that has ended is left be. */
  killGroup(signal?: NodeJS.Signals): void;
  /** The exit code or signal as the leader ends (its output may still be coming); a spawn that failed gives its error. */
  readonly ended: Promise<number | NodeJS.Signals | Error>;
  /**
   * The exit code or signal once the leader is gone and its output read to the end ("close"), so a
   * test reads what it wrote last; at most two seconds after the exit, though: a child left in the
   * group (a killed run's plugin, a Chromium helper) may hold the pipes. A spawn that failed gives its error.
   */
  readonly exited: Promise<number | NodeJS.Signals | Error>;
  /** Stops reading its output: a pipe a helper outside the group holds open would keep this process waiting. */
  release(): void;
}

export interface GroupOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Which of its streams to read: both (the default, interleaved as they come) or stderr alone. */
  readonly read?: "both" | "stderr";
  /** How much of the output to keep, its end (default: all). */
  readonly keepChars?: number;
}

/** Signals a process group by its leader's pid; a group that has ended already is left be. */
export function killGroup(leader: number | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    if (leader !== undefined) process.kill(-leader, signal);
  } catch {
    // The group has ended already.
  }
}

/**
 * Starts `command` detached, the leader of a new process group, reading its output (stdin closed).
 * Nothing waits on it: a caller kills it with killGroup, or awaits `ended` or `exited`.
 */
export function startInGroup(command: string, args: readonly string[], options: GroupOptions = {}): GroupRun {
  const read = options.read ?? "both";
  const child = spawn(command, args, { ...(options.cwd === undefined ? {} : { cwd: options.cwd }), env: options.env ?? process.env, stdio: ["ignore", read === "both" ? "pipe" : "ignore", "pipe"], detached: true });
  let output = "";
  const keep = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
    if (options.keepChars !== undefined && output.length > options.keepChars) output = output.slice(-options.keepChars);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const ended = new Promise<number | NodeJS.Signals | Error>((resolve) => {
    child.on("error", resolve);
    child.on("exit", (code, signal) => resolve(code ?? (signal as NodeJS.Signals)));
  });
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const exited = ended.then((status) => (status instanceof Error ? status : new Promise<number | NodeJS.Signals | Error>((resolve) => {
    const late = setTimeout(() => resolve(status), 2000);
    void closed.then(() => {
      clearTimeout(late);
      resolve(status);
    });
  })));
  return {
    pid: child.pid,
    output: () => output,
    killGroup: (signal?: NodeJS.Signals) => killGroup(child.pid, signal),
    ended,
    exited,
    release() {
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
  };
}

/** A process's state letter and process group, from /proc/<pid>/stat; undefined once gone. */
export function processStat(pid: number): { state: string; group: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the state come the parent and the process group (the name before them, in parentheses, may hold spaces).
    return { state: processState(stat), group: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) };
  } catch {
    return undefined;
  }
}

/** The live processes of one process group (zombies are done). */
export function groupMembers(group: number): number[] {
  return readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    const stat = processStat(pid);
    return stat !== undefined && stat.group === group && stat.state !== "Z";
  });
}
