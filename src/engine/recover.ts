/**
 * `strata recover`: brings a stack that a killed run left behind back to one
 * the engine can read and update, and says what it did.
 *
 * Why a killed run can leave an unreadable stack on the file backend: the
 * checkpoint `<stack>.json` is written to a temp file and renamed (atomic),
 * but gocloud's fileblob, under Pulumi's DIY backend, writes the metadata
 * sidecar `<stack>.json.attrs` in place (os.Create, which truncates, then
 * the JSON). A SIGKILL between the two leaves an empty sidecar, and every
 * read of the checkpoint decodes it first: `failed to load checkpoint: EOF`,
 * though the checkpoint itself is intact. Without a sidecar fileblob uses
 * defaults, so removing the broken one is the whole repair.
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../core/problems.js";

export interface RecoveryStep {
  readonly action: "removed sidecar" | "removed temp file" | "restored checkpoint" | "released lock" | "cleared pending operations";
  readonly detail: string;
}

/** A metadata sidecar fileblob can read: JSON, or no file at all. Pure. */
export function isReadableSidecar(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

interface PendingOperation {
  readonly type?: string;
  readonly resource?: { readonly urn?: string; readonly type?: string };
}

/** The deployment without its pending operations, and a line per operation dropped. Pure. */
export function withoutPendingOperations(exported: { deployment?: Record<string, unknown> }): { exported: typeof exported; dropped: string[] } {
  const pending = (exported.deployment?.pending_operations ?? []) as PendingOperation[];
  const dropped = pending.map((operation) => `${operation.type ?? "operation"} ${operation.resource?.type ?? ""} ${operation.resource?.urn?.split("::").pop() ?? ""}`.replace(/\s+/g, " ").trim());
  if (pending.length === 0) return { exported, dropped };
  const { pending_operations: _dropped, ...deployment } = exported.deployment ?? {};
  return { exported: { ...exported, deployment }, dropped };
}

/** The folder of a `file://` backend URL; undefined for other backends. */
export function fileBackendDir(backendUrl: string | undefined): string | undefined {
  if (backendUrl === undefined || !backendUrl.startsWith("file://")) return undefined;
  return fileURLToPath(backendUrl.replace(/\?.*$/, ""));
}

export interface RecoverOptions {
  readonly projectDir: string;
  readonly project: string;
  readonly stack: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Release a lock whose owner this machine cannot check (another host's). */
  readonly force?: boolean;
}

function pulumi(args: readonly string[], options: RecoverOptions): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("pulumi", [...args, "--stack", options.stack], { cwd: options.projectDir, env: { ...process.env, ...options.env }, maxBuffer: 512 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

/** A stack lock as Pulumi's DIY backends write it (file and PostgreSQL alike). */
export interface StackLock {
  /** Where it is: a file, or a key of the state table. */
  readonly where: string;
  readonly pid?: number;
  readonly hostname?: string;
  readonly username?: string;
  /** When the update took it (RFC 3339). */
  readonly timestamp?: string;
}

/** Why a lock may or may not be released. Pure. */
export type LockVerdict =
  | { readonly release: true; readonly why: string }
  | { readonly release: false; readonly why: string; readonly fix: string };

/** `3 min 20 s` since a lock's timestamp, or "of unknown age". */
export function lockAge(timestamp: string | undefined, now: number): string {
  const taken = timestamp === undefined ? Number.NaN : Date.parse(timestamp);
  if (!Number.isFinite(taken)) return "of unknown age";
  const seconds = Math.max(0, Math.round((now - taken) / 1000));
  return seconds < 60 ? `${seconds} s old` : seconds < 3600 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s old` : `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min old`;
}

/**
 * May this lock be released? Only when its owner is known to be gone: it was taken on this machine
 * and its process is not running (a zombie is not running). A lock of another machine cannot be
 * checked from here, so it stays unless the user says --force; a live run's here always stays.
 */
export function lockVerdict(lock: StackLock, here: { readonly hostname: string; readonly running: (pid: number) => boolean; readonly now: number }, force: boolean): LockVerdict {
  const owner = `pid ${lock.pid ?? "?"} on host ${lock.hostname ?? "?"}${lock.username === undefined ? "" : ` (user ${lock.username})`}, ${lockAge(lock.timestamp, here.now)}`;
  if (lock.hostname === here.hostname && typeof lock.pid === "number") {
    if (here.running(lock.pid)) return { release: false, why: `an update of this stack is still running here: ${owner}`, fix: "let it finish, or stop it (kill its process group), then run strata recover again" };
    return { release: true, why: `its update (${owner}) is not running any more` };
  }
  if (force) return { release: true, why: `--force: the owner (${owner}) cannot be checked from here; you said it is gone` };
  return {
    release: false,
    why: `the stack's lock belongs to ${owner}, which this machine cannot check (it may still be running there)`,
    fix: `make sure that run has ended on ${lock.hostname ?? "that host"}, then: strata recover --stack <stack> --force`,
  };
}

/** PF_EXITING in /proc/<pid>/stat's flags: the task has begun to exit. */
const PF_EXITING = 0x4;
/** SIGKILL's bit in the pending-signal masks of /proc/<pid>/status (signal 9: bit 8). */
const SIGKILL_BIT = 1n << 8n;

/**
 * Whether a process runs, from /proc: not when it is gone, a zombie (Z) or dead (X) — `kill(pid, 0)`
 * still finds a zombie until it is reaped, forever under a PID 1 that never reaps — nor when it is
 * on its way out: exiting (PF_EXITING) or with a SIGKILL pending, which a process-group kill leaves
 * for a moment before the process is torn down. Such a process never runs user code again, so it
 * can write no state. Where /proc is missing, kill(pid, 0) is all there is.
 */
export function processRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT" && existsSync("/proc/self/stat")) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  let status = "";
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return false;
  }
  return !endingProcess(stat, status);
}

/** Whether /proc's stat and status lines show a process that has ended or is ending. Pure. */
export function endingProcess(stat: string, status: string): boolean {
  if (/^[ZX]$/.test(processState(stat))) return true;
  const flags = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[6] ?? "0");
  if ((flags & PF_EXITING) !== 0) return true;
  return [...status.matchAll(/^(SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some((match) => (BigInt(`0x${match[2]}`) & SIGKILL_BIT) !== 0n);
}

/** The state letter of a /proc/<pid>/stat line: after the command in parentheses, which may hold spaces and ")". Pure. */
export function processState(stat: string): string {
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

/**
 * Whether a lock owner on this machine still runs, asked three times 100 ms apart: between the
 * moment a killed process takes its SIGKILL off the pending set and the moment it is marked
 * exiting, /proc shows it running for a few microseconds.
 */
async function stillRunning(pid: number): Promise<boolean> {
  for (let check = 0; check < 3; check++) {
    if (!processRunning(pid)) return false;
    if (check < 2) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** Refused recovery: a lock whose owner may still be running. */
export class RecoveryRefused extends UserError {}

function parseLock(where: string, text: string): StackLock {
  let lock: { pid?: unknown; hostname?: unknown; username?: unknown; timestamp?: unknown } = {};
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch {
    // A lock cut short by the kill: its owner is unknown, so it is treated as another host's.
  }
  return {
    where,
    ...(typeof lock.pid === "number" ? { pid: lock.pid } : {}),
    ...(typeof lock.hostname === "string" ? { hostname: lock.hostname } : {}),
    ...(typeof lock.username === "string" ? { username: lock.username } : {}),
    ...(typeof lock.timestamp === "string" ? { timestamp: lock.timestamp } : {}),
  };
}

/** The locks of a stack on a file backend. */
function fileLocks(lockDir: string): StackLock[] {
  if (!existsSync(lockDir)) return [];
  return readdirSync(lockDir).filter((entry) => entry.endsWith(".json")).map((name) => {
    const file = path.join(lockDir, name);
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // Gone since the listing: parsed as unknown, which only refuses.
    }
    return parseLock(file, text);
  });
}

/**
 * The locks of a stack on Pulumi's PostgreSQL backend: rows of its state table (default
 * pulumi_state) under `<database>/.pulumi/locks/…/<project>/<stack>/`, each `{"data": base64 of the lock}`.
 * Read with psql (Debian's postgresql-client) and the same PGPASSFILE as the engine.
 */
async function postgresLocks(backendUrl: string, project: string, stack: string, env: Readonly<Record<string, string | undefined>>): Promise<StackLock[]> {
  const url = new URL(backendUrl);
  const table = url.searchParams.get("table") ?? "pulumi_state";
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(table)) throw new RecoveryRefused(`the backend URL names the table "${table}", which strata recover cannot read safely; fix: release the lock with pulumi cancel --stack ${stack} after checking its owner`);
  url.searchParams.delete("table");
  // Keys start with the database's name as the bucket's prefix: `<db>/.pulumi/locks/organization/<project>/<stack>/<id>.json`.
  const query = `SELECT key, convert_from(decode(data->>'data', 'base64'), 'UTF8') FROM ${table} WHERE key LIKE $$%.pulumi/locks/%/${project}/${stack}/%.json$$`;
  const psql = ["psql", "/usr/lib/postgresql/15/bin/psql"].find((candidate) => candidate === "psql" || existsSync(candidate)) ?? "psql";
  const answer = await new Promise<{ code: number; stdout: string; stderr: string; missing: boolean }>((resolve) => {
    execFile(psql, ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url.toString(), "-c", query], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : 1, stdout, stderr, missing: (error as { code?: string } | null)?.code === "ENOENT" });
    });
  });
  if (answer.missing) throw new RecoveryRefused(`strata recover reads the PostgreSQL backend's locks with psql, which is not installed, so it cannot see who holds the lock; fix: apt-get install postgresql-client, or check the lock's owner yourself and use --force`);
  if (answer.code !== 0) throw new RecoveryRefused(`cannot read the stack's locks from the PostgreSQL backend (${answer.stderr.trim().split("\n")[0] ?? "psql failed"}); fix: check that the database runs (STRATA_BACKEND=postgres scripts/services.sh status) and PGPASSFILE, then run strata recover again`);
  return answer.stdout.split("\n").filter((line) => line.includes("\t")).map((line) => {
    const [key, text] = line.split("\t") as [string, string];
    return parseLock(`${key} (PostgreSQL table ${table})`, text);
  });
}

/** Refuses unless every lock may go; returns a line per lock that will be released. */
async function releasableLocks(locks: readonly StackLock[], force: boolean, stack: string): Promise<string[]> {
  const lines: string[] = [];
  for (const lock of locks) {
    const running = lock.pid !== undefined && lock.hostname === hostname() && (await stillRunning(lock.pid));
    const verdict = lockVerdict(lock, { hostname: hostname(), running: () => running, now: Date.now() }, force);
    if (!verdict.release) throw new RecoveryRefused(`stack ${stack}: ${verdict.why}; nothing was changed. fix: ${verdict.fix.replace("<stack>", stack)}`);
    lines.push(`${lock.where}: ${verdict.why}`);
  }
  return lines;
}

/**
 * Checkpoints to restore from, newest first: the backend's copy of the one
 * before the last write, then those kept in the stack's history and backups.
 */
function checkpointCandidates(backendDir: string, project: string, stack: string, stacksDir: string): string[] {
  const kept: string[] = [];
  for (const [dir, suffix] of [[path.join(backendDir, ".pulumi", "history", project, stack), ".checkpoint.json"], [path.join(backendDir, ".pulumi", "backups", project, stack), ".json"]] as const) {
    if (existsSync(dir)) kept.push(...readdirSync(dir).filter((name) => name.endsWith(suffix)).map((name) => path.join(dir, name)));
  }
  kept.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return [path.join(stacksDir, `${stack}.json.bak`), ...kept].filter((file) => existsSync(file));
}

export async function recoverStack(options: RecoverOptions): Promise<RecoveryStep[]> {
  const steps: RecoveryStep[] = [];
  const backendDir = fileBackendDir(options.env.PULUMI_BACKEND_URL);
  const stacksDir = backendDir === undefined ? undefined : [path.join(backendDir, ".pulumi", "stacks", options.project), path.join(backendDir, ".pulumi", "stacks")]
    .find((dir) => existsSync(path.join(dir, `${options.stack}.json`)) || existsSync(path.join(dir, `${options.stack}.json.gz`)));
  const lockDir = backendDir === undefined ? undefined : path.join(backendDir, ".pulumi", "locks", "organization", options.project, options.stack);
  const backendUrl = options.env.PULUMI_BACKEND_URL ?? process.env.PULUMI_BACKEND_URL;
  // Who holds the lock is settled before anything is touched: a lock whose owner may be running stops recovery.
  const locks = lockDir !== undefined ? fileLocks(lockDir)
    : backendUrl?.startsWith("postgres://") === true ? await postgresLocks(backendUrl, options.project, options.stack, options.env)
    : undefined;
  const released = locks === undefined ? undefined : await releasableLocks(locks, options.force === true, options.stack);
  if (backendDir !== undefined && stacksDir !== undefined) {
    const files = [
      ...readdirSync(stacksDir).filter((entry) => entry.startsWith(`${options.stack}.json`)).map((entry) => path.join(stacksDir, entry)),
      ...(lockDir !== undefined && existsSync(lockDir) ? readdirSync(lockDir).map((entry) => path.join(lockDir, entry)) : []),
    ];
    for (const file of files) {
      if (file.endsWith(".attrs") && !isReadableSidecar(readFileSync(file, "utf8"))) {
        rmSync(file);
        steps.push({ action: "removed sidecar", detail: `${file} was unreadable (a metadata write cut short by the kill); the file it describes is untouched` });
      } else if (/\.[0-9a-f]+\.tmp$/.test(file)) {
        rmSync(file);
        steps.push({ action: "removed temp file", detail: `${file}, a write that was never renamed into place` });
      }
    }
  }
  if ((await pulumi(["stack", "export"], options)).code !== 0 && backendDir !== undefined && stacksDir !== undefined) {
    const current = path.join(stacksDir, `${options.stack}.json`);
    for (const candidate of checkpointCandidates(backendDir, options.project, options.stack, stacksDir)) {
      try {
        JSON.parse(readFileSync(candidate, "utf8"));
      } catch {
        continue;
      }
      copyFileSync(candidate, current);
      rmSync(`${current}.attrs`, { force: true });
      if ((await pulumi(["stack", "export"], options)).code === 0) {
        steps.push({ action: "restored checkpoint", detail: `${current} from ${candidate}` });
        break;
      }
    }
  }
  // `pulumi cancel` succeeds with or without a lock: the locks were read first, so the report is true.
  // A backend whose locks Strata cannot read (neither file nor PostgreSQL) is asked to cancel only with --force.
  if (released === undefined && options.force !== true) {
    throw new RecoveryRefused(`stack ${options.stack}: strata recover cannot see who holds locks on this backend (${backendUrl ?? "unknown"}); nothing was changed. fix: make sure no update of the stack is running, then strata recover --stack ${options.stack} --force`);
  }
  if (released === undefined || released.length > 0) {
    const cancel = await pulumi(["cancel", "--yes"], options);
    if (cancel.code !== 0) throw new Error(`pulumi cancel failed:\n${cancel.stderr.trim()}`);
    steps.push({ action: "released lock", detail: released === undefined ? "--force: asked the backend to release the stack's lock" : released.join("; ") });
  }
  const exported = await pulumi(["stack", "export"], options);
  if (exported.code !== 0) throw new Error(`the stack ${options.stack} still cannot be read:\n${exported.stderr.trim()}`);
  const { exported: cleared, dropped } = withoutPendingOperations(JSON.parse(exported.stdout) as { deployment?: Record<string, unknown> });
  if (dropped.length > 0) {
    const file = path.join(tmpdir(), `strata-recover-${process.pid}-${options.stack}.json`);
    writeFileSync(file, JSON.stringify(cleared));
    try {
      const imported = await pulumi(["stack", "import", "--file", file], options);
      if (imported.code !== 0) throw new Error(`pulumi stack import failed:\n${imported.stderr.trim()}`);
    } finally {
      rmSync(file, { force: true });
    }
    steps.push({ action: "cleared pending operations", detail: dropped.join("; ") });
  }
  return steps;
}
