/**
 * Plugins a killed engine left running. The engine (`pulumi`) starts its plugins — the language
 * host and the program under it, the docker provider, Strata's own provider — as its children, each
 * in a process group of its own: a kill of the engine alone (SIGKILL, an OOM kill), and even a kill
 * of `strata up`'s whole process group, leaves them behind, reparented, and they run on for as long
 * as nobody ends them (five were still running 40 minutes after a test suite).
 *
 * Which are a stack's: `strata up` starts its engine with STRATA_RUN_STACK=<stack>, which every
 * process the engine starts inherits, beside the engine's PULUMI_BACKEND_URL. The working folder
 * says nothing here: every plugin runs in the program's folder, shared by all stacks of a project.
 * `strata recover` ends the plugins that carry this stack and backend and have no engine left
 * above them, with the processes under them; a process whose engine still runs is never touched,
 * nor one of a bare `pulumi up`, nor anything that is not a plugin.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** The variable `strata up` gives its engine, and so every plugin of the run, naming the stack. */
export const RUN_STACK_VARIABLE = "STRATA_RUN_STACK";

/** One process as /proc shows it. */
export interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** Its command line (argv). */
  readonly argv: readonly string[];
  /** The variables of its environment that say whose run it is; undefined when they cannot be read (another user's). */
  readonly env?: { readonly runStack?: string; readonly backendUrl?: string };
}

/** A Pulumi engine: the `pulumi` CLI. Pure. */
function isEngine(entry: ProcessEntry): boolean {
  return path.basename(entry.argv[0] ?? "") === "pulumi";
}

/**
 * A plugin an engine starts: a `pulumi-resource-*` or `pulumi-language-*` binary, or Strata's own
 * provider (its launcher execs Node on the compiled provider). Anything else that inherited the
 * run's variables (a gpg-agent a credential helper started, an ssh control master) is not ours to
 * end. Pure.
 */
function isPlugin(entry: ProcessEntry): boolean {
  return /^pulumi-(resource|language)-/.test(path.basename(entry.argv[0] ?? "")) || /\/src\/pulumi\/provider\/main\.js$/.test(entry.argv[1] ?? "");
}

/**
 * The leftover processes of a stack's killed run, each with the processes under it (the language
 * host's program): processes of the stack's runs (on this backend) whose line of ancestors holds no
 * engine any more. Outermost first; a process under another leftover is ended with it. Pure.
 */
export function leftoverPlugins(processes: readonly ProcessEntry[], run: { readonly stack: string; readonly backendUrl: string }): { readonly plugin: ProcessEntry; readonly under: readonly number[] }[] {
  const byPid = new Map(processes.map((entry) => [entry.pid, entry]));
  const ancestors = (entry: ProcessEntry): ProcessEntry[] => {
    const line: ProcessEntry[] = [];
    for (let parent = byPid.get(entry.ppid); parent !== undefined && !line.includes(parent) && parent !== entry; parent = byPid.get(parent.ppid)) line.push(parent);
    return line;
  };
  const orphaned = processes.filter((entry) => entry.env?.runStack === run.stack && entry.env.backendUrl === run.backendUrl && isPlugin(entry) && !ancestors(entry).some(isEngine));
  const outermost = orphaned.filter((entry) => !ancestors(entry).some((ancestor) => orphaned.includes(ancestor)));
  return outermost.map((plugin) => ({ plugin, under: processes.filter((entry) => ancestors(entry).includes(plugin)).map((entry) => entry.pid) }));
}

/** The processes this one can see, from /proc (none where /proc is missing); this process left out. */
export function processTable(): ProcessEntry[] {
  let pids: number[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => pid !== process.pid);
  } catch {
    return [];
  }
  return pids.flatMap((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // A zombie has ended already: nothing to end.
      if (/^[ZX]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3))) return [];
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((arg) => arg !== "");
      let env: ProcessEntry["env"];
      try {
        const variables = new Map(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)] as const));
        const runStack = variables.get(RUN_STACK_VARIABLE);
        const backendUrl = variables.get("PULUMI_BACKEND_URL");
        env = { ...(runStack === undefined ? {} : { runStack }), ...(backendUrl === undefined ? {} : { backendUrl }) };
      } catch {
        // Another user's process: whose run it is stays unknown, so it is never ended.
      }
      return [{ pid, ppid, argv, ...(env === undefined ? {} : { env }) }];
    } catch {
      return []; // gone since the listing
    }
  });
}

/** Ends the leftover processes of a stack's killed runs (SIGKILL: nothing of theirs is worth saving); a line per one. */
export function endLeftoverPlugins(run: { readonly stack: string; readonly backendUrl: string }): string[] {
  return leftoverPlugins(processTable(), run).flatMap(({ plugin, under }) => {
    const ended = [plugin.pid, ...under].filter((pid) => {
      try {
        process.kill(pid, "SIGKILL");
        return true;
      } catch {
        return false; // ended on its own meanwhile
      }
    });
    if (!ended.includes(plugin.pid)) return [];
    const name = path.basename(plugin.argv[0] ?? "") === "node" ? `node ${plugin.argv[1] ?? ""}` : path.basename(plugin.argv[0] ?? "?");
    return [`pid ${plugin.pid} ${name}${under.length === 0 ? "" : ` and ${under.length} process(es) under it`}: its engine is gone`];
  });
}
