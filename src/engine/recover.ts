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
import { copyFileSync, existsSync, linkSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { UserError } from "../core/problems.js";
import { checkpointDir, checkpointNames, checkpointsIn, fileBackendDir } from "./file-backend.js";
import { endLeftoverPlugins } from "./leftover-plugins.js";
import { type LockOwner, type OwnerStore, ownerStore, startTicksOf, thisMachine, type Whereabouts } from "./lock-owner.js";
import { fileLocks, postgresLocks, stackLockDir, type StackLock } from "./stack-lock.js";

export interface RecoveryStep {
  readonly action: "removed sidecar" | "removed temp file" | "restored checkpoint" | "put back checkpoint" | "kept checkpoint" | "released lock" | "cleared pending operations" | "ended leftover plugin";
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

/** What /proc (or kill(pid, 0) where /proc is missing) shows of a pid in this namespace. */
export type Sighting =
  | { readonly seen: "none" }
  | { readonly seen: "running" | "ending"; readonly startTicks?: number }
  | { readonly seen: "unknown"; readonly why: string };

/** Where recover runs, and how it sees a pid there. */
export interface RecoverHere extends Whereabouts {
  readonly now: number;
  readonly sight: (pid: number) => Sighting;
}

/** The owner records of the stack, or why they could not be read. */
export interface OwnerRecords {
  readonly owners: readonly LockOwner[];
  readonly unreadable?: string;
}

/**
 * A record is of the lock's owner when it names the lock's pid and host and was written just before
 * the lock was taken (`strata up` writes it as the engine starts; the engine locks within seconds).
 * The window keeps an old record of a reused pid from speaking for a later lock. Pure.
 */
export function recordOfLock(lock: StackLock, owner: LockOwner): boolean {
  if (owner.pid !== lock.pid || owner.host !== lock.hostname) return false;
  const taken = lock.timestamp === undefined ? Number.NaN : Date.parse(lock.timestamp);
  const written = Date.parse(owner.writtenAt);
  // A lock file still being written has no timestamp of its own worth trusting yet: pid and host decide.
  if (!Number.isFinite(taken)) return lock.tempAgeMs !== undefined;
  return taken >= written - RECORD_SLACK_MS && taken <= written + RECORD_WINDOW_MS;
}
/** Clock granularity between the record's time and the lock's (both this machine's clock when they are of one boot). */
const RECORD_SLACK_MS = 5_000;
/** How long after its start an engine may take its lock and still be the record's process. */
const RECORD_WINDOW_MS = 10 * 60_000;
/** A lock file still a temp file after this long was cut short: no run takes that long to rename it. */
const TEMP_LOCK_SETTLED_MS = 60_000;

type Judgement = { readonly is: "gone"; readonly why: string } | { readonly is: "live"; readonly why: string } | { readonly is: "unknown"; readonly why: string };

/** Whether the process of one owner record has ended, seen from here. Pure. */
export function judgeOwner(owner: LockOwner, here: RecoverHere): Judgement {
  if (owner.bootId === undefined || here.bootId === undefined) return { is: "unknown", why: `the boot it ran in is unknown (${owner.bootId === undefined ? "the record names none" : "this machine has no /proc/sys/kernel/random/boot_id"})` };
  if (owner.bootId !== here.bootId) return { is: "unknown", why: `it started in boot ${owner.bootId}, this machine runs boot ${here.bootId}: another machine with the same host name, or this one before a restart` };
  if (owner.pidNamespace === undefined || here.pidNamespace === undefined) return { is: "unknown", why: "its PID namespace is unknown (no /proc/self/ns/pid)" };
  if (owner.pidNamespace !== here.pidNamespace) return { is: "unknown", why: `it runs in another PID namespace (${owner.pidNamespace}; this recover runs in ${here.pidNamespace}): another container with the same host name, whose pids this one cannot see` };
  const seen = here.sight(owner.pid);
  if (seen.seen === "unknown") return { is: "unknown", why: seen.why };
  if (seen.seen === "none") return { is: "gone", why: "its pid is gone in this boot and PID namespace" };
  if (owner.startTicks !== undefined && seen.startTicks !== undefined && owner.startTicks !== seen.startTicks) return { is: "gone", why: "its pid now belongs to a later process" };
  if (seen.seen === "ending") return { is: "gone", why: "it is exiting" };
  return { is: "live", why: "it is running" };
}

/**
 * May this lock be released? Only when its owner is provably gone: a record Strata wrote when the
 * run started names this lock's pid and host, was written in this boot and PID namespace, and that
 * process (pid and start time) is not running. A lock of another host, or one whose owner cannot be
 * proved gone (no record, another boot or namespace), stays unless the user says --force; a run
 * seen running here always stays. Pure.
 */
export function lockVerdict(lock: StackLock, records: OwnerRecords, here: RecoverHere, force: boolean): LockVerdict {
  const owner = `pid ${lock.pid ?? "?"} on host ${lock.hostname ?? "?"}${lock.username === undefined ? "" : ` (user ${lock.username})`}, ${lock.tempAgeMs === undefined ? lockAge(lock.timestamp, here.now) : `a lock file still being written ${Math.round(lock.tempAgeMs / 1000)} s ago`}`;
  const stillRunning: LockVerdict = { release: false, why: `the run holding this stack's lock (an update, or strata ci-clean) is still running here: ${owner}`, fix: "let it finish, or stop it (kill its process group), then run strata recover again" };
  const forced: LockVerdict = { release: true, why: `--force: the owner (${owner}) cannot be proved gone from here; you said it is gone` };
  if (lock.pid === undefined || lock.hostname === undefined) {
    // A temp lock file cut short long ago: no run is about to rename it into place.
    if (lock.tempAgeMs !== undefined && lock.tempAgeMs > TEMP_LOCK_SETTLED_MS) return { release: true, why: `a lock file cut short ${Math.round(lock.tempAgeMs / 1000)} s ago, never renamed into place` };
    if (force) return forced;
    const why = lock.tempAgeMs === undefined ? "the stack's lock names no owner (a write cut short), so strata recover cannot tell whether its run has ended" : `a lock file is being written (${Math.round(lock.tempAgeMs / 1000)} s ago): a run may be starting`;
    return { release: false, why, fix: "make sure no update of the stack is running, then: strata recover --stack <stack> --force" };
  }
  if (lock.hostname !== here.host) {
    if (force) return forced;
    return {
      release: false,
      why: `the stack's lock belongs to ${owner}, which this machine cannot check (it may still be running there)`,
      fix: `make sure that run has ended on ${lock.hostname}, then: strata recover --stack <stack> --force`,
    };
  }
  const matching = records.owners.filter((record) => recordOfLock(lock, record));
  const judgements = matching.map((record) => judgeOwner(record, here));
  if (matching.length === 0) {
    const seen = here.sight(lock.pid);
    if (seen.seen === "running") return stillRunning;
    judgements.push({ is: "unknown", why: records.unreadable !== undefined ? `Strata's record of who took it cannot be read (${records.unreadable})`
      : "Strata holds no record of who took it (a run not started by strata up, or one whose record could not be written), and a run under the same host name in another container or PID namespace looks dead from here" });
  }
  if (judgements.some((judgement) => judgement.is === "live")) return stillRunning;
  const unknown = judgements.filter((judgement) => judgement.is === "unknown");
  if (unknown.length === 0) return { release: true, why: `its update (${owner}) is not running any more (${judgements.map((judgement) => judgement.why).join("; ")})` };
  if (force) return forced;
  return {
    release: false,
    why: `cannot tell whether the stack's lock owner, ${owner}, has ended: ${unknown.map((judgement) => judgement.why).join("; ")}`,
    fix: `make sure that run has ended (on every machine or container named ${lock.hostname} that shares this backend), then: strata recover --stack <stack> --force`,
  };
}

/** PF_EXITING in /proc/<pid>/stat's flags: the task has begun to exit. */
const PF_EXITING = 0x4;
/** SIGKILL's bit in the pending-signal masks of /proc/<pid>/status (signal 9: bit 8). */
const SIGKILL_BIT = 1n << 8n;

/** How recover reads processes: the real /proc and kill(2), or a test's stand-in. */
export interface ProcessProbe {
  readonly readFile: (file: string) => string;
  readonly kill: (pid: number) => void;
}
const liveProbe: ProcessProbe = {
  readFile: (file) => readFileSync(file, "utf8"),
  kill: (pid) => process.kill(pid, 0),
};

/**
 * A pid in this namespace, from /proc: gone; a zombie (Z) or dead (X) — `kill(pid, 0)` still finds
 * a zombie until it is reaped, forever under a PID 1 that never reaps — or on its way out: exiting
 * (PF_EXITING) or with a SIGKILL pending, which a process-group kill leaves for a moment before the
 * process is torn down ("ending": it never runs user code again, so it can write no state); else
 * running, with its start time. Where /proc is missing or hides the pid (hidepid), kill(pid, 0) is
 * all there is: EPERM means a process runs that is not ours, never that it is gone.
 */
export function sightProcess(pid: number, probe: ProcessProbe = liveProbe): Sighting {
  let stat: string;
  try {
    stat = probe.readFile(`/proc/${pid}/stat`);
  } catch {
    // No /proc entry is not proof of absence: /proc mounted with hidepid hides other users' processes.
    // kill(pid, 0) decides: ESRCH gone, EPERM someone else's live process.
    try {
      probe.kill(pid);
      return { seen: "running" };
    } catch (killError) {
      const code = (killError as { code?: string }).code;
      if (code === "ESRCH") return { seen: "none" };
      if (code === "EPERM") return { seen: "running" };
      return { seen: "unknown", why: `kill(${pid}, 0) failed with ${code ?? String(killError)}` };
    }
  }
  const startTicks = startTicksOf(stat);
  let status: string;
  try {
    status = probe.readFile(`/proc/${pid}/status`);
  } catch {
    // Gone between the two reads.
    return { seen: "none" };
  }
  const seen = endingProcess(stat, status) ? "ending" : "running";
  return startTicks === undefined ? { seen } : { seen, startTicks };
}

/** Whether a process runs (see sightProcess): what cannot be told counts as running. */
export function processRunning(pid: number, probe: ProcessProbe = liveProbe): boolean {
  const seen = sightProcess(pid, probe).seen;
  return seen === "running" || seen === "unknown";
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
 * How a pid is seen, asked three times 100 ms apart until it is not running: between the moment a
 * killed process takes its SIGKILL off the pending set and the moment it is marked exiting, /proc
 * shows it running for a few microseconds.
 */
async function settledSighting(pid: number): Promise<Sighting> {
  let seen = sightProcess(pid);
  for (let check = 1; check < 3 && seen.seen === "running"; check++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    seen = sightProcess(pid);
  }
  return seen;
}

/** Refused recovery: a lock whose owner may still be running. */
export class RecoveryRefused extends UserError {}

/** strata recover's words when a PostgreSQL backend's locks cannot be read. */
function recoverRefusal(stack: string): (why: "table" | "psql missing" | "read failed", detail: string) => RecoveryRefused {
  return (why, detail) => new RecoveryRefused(
    why === "table" ? `the backend URL names the table "${detail}", which strata recover cannot read safely; fix: release the lock with pulumi cancel --stack ${stack} after checking its owner`
    : why === "psql missing" ? "strata recover reads the PostgreSQL backend's locks with psql, which is not installed, so it cannot see who holds the lock; fix: apt-get install postgresql-client, or check the lock's owner yourself and use --force"
    : `cannot read the stack's locks from the PostgreSQL backend (${detail}); fix: check that the database runs (STRATA_BACKEND=postgres scripts/services.sh status) and PGPASSFILE, then run strata recover again`);
}

/** Every owner record of the stack, or why they could not be read (which leaves locks "cannot tell"). */
async function ownerRecordsOf(store: OwnerStore | undefined, project: string, stack: string): Promise<OwnerRecords> {
  if (store === undefined) return { owners: [], unreadable: "this backend keeps no owner records" };
  try {
    return { owners: await store.list(project, stack) };
  } catch (error) {
    return { owners: [], unreadable: `${store.where}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Refuses unless every lock may go; returns a line per lock that will be released. */
async function releasableLocks(locks: readonly StackLock[], records: OwnerRecords, force: boolean, stack: string): Promise<string[]> {
  const lines: string[] = [];
  const machine = thisMachine();
  const pids = [...new Set([...locks.map((lock) => lock.pid), ...records.owners.map((owner) => owner.pid)].filter((pid): pid is number => pid !== undefined))];
  const sightings = new Map(await Promise.all(pids.map(async (pid) => [pid, await settledSighting(pid)] as const)));
  const here: RecoverHere = { ...machine, now: Date.now(), sight: (pid) => sightings.get(pid) ?? sightProcess(pid) };
  for (const lock of locks) {
    const verdict = lockVerdict(lock, records, here, force);
    if (!verdict.release) throw new RecoveryRefused(`stack ${stack}: ${verdict.why}; nothing was changed. fix: ${verdict.fix.replace("<stack>", stack)}`);
    lines.push(`${lock.where}: ${verdict.why}`);
  }
  return lines;
}

/** Records whose process has ended in this boot and namespace: they can speak for no lock any more. */
async function pruneOwnerRecords(store: OwnerStore | undefined, records: OwnerRecords): Promise<void> {
  if (store === undefined) return;
  const here: RecoverHere = { ...thisMachine(), now: Date.now(), sight: (pid) => sightProcess(pid) };
  for (const owner of records.owners) if (judgeOwner(owner, here).is === "gone") await store.remove(owner).catch(() => undefined);
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
  return [path.join(stacksDir, `${stack}.json.bak`), ...newestFirst(kept)].filter((file) => existsSync(file));
}

/** The name a cut-short checkpoint keeps while recover tries copies in its place. */
function asideOf(current: string): string {
  return `${current}.cut-short`;
}

/**
 * A checkpoint an earlier recover kept aside (asideOf) and was stopped before it put back or let go
 * (a kill, a full disk). Put back over what is in its place only when that is the same bytes (the
 * second copy where the file system has no hard links): nothing is lost. Anything else in its place (a copy
 * recover restored or was trying, the state a run wrote since, JSON a newer CLI wrote: they cannot be
 * told apart, as Pulumi keeps byte copies of its checkpoints among those recover tries) is left as it
 * is, and the aside file renamed out of the way with a step that says where, for the user to judge.
 * Temp files of the stopped recover are removed.
 */
async function putBackAside(current: string, options: RecoverOptions): Promise<RecoveryStep[]> {
  const steps: RecoveryStep[] = [];
  const aside = asideOf(current);
  for (const [temp, what] of [[`${current}.restoring`, "a copy a stopped strata recover was putting in place"], [`${aside}.tmp`, "a second copy of a checkpoint a stopped strata recover was making"]] as const) {
    if (!existsSync(temp)) continue;
    rmSync(temp);
    steps.push({ action: "removed temp file", detail: `${temp}, ${what}` });
  }
  if (!existsSync(aside)) return steps;
  // Still one file under both names (stopped before it placed a copy): the second name goes.
  const [asideStat, currentStat] = [statSync(aside), existsSync(current) ? statSync(current) : undefined];
  if (currentStat !== undefined && asideStat.dev === currentStat.dev && asideStat.ino === currentStat.ino) {
    rmSync(aside);
    steps.push({ action: "removed temp file", detail: `${aside}, a second name of ${current} that a stopped strata recover had given it` });
    return steps;
  }
  const reads = (await pulumi(["stack", "export"], options)).code === 0;
  // The same bytes cut short (the second copy made where there are no hard links): put back. A
  // different file cut short was written since, newer than the aside one: left, as anything else.
  const currentForm = existsSync(current) ? jsonForm(current) : undefined;
  const sameCutShort = currentForm === "not JSON" && readFileSync(current).equals(readFileSync(aside));
  if (!reads && (!existsSync(current) || sameCutShort)) {
    renameSync(aside, current);
    steps.push({ action: "put back checkpoint", detail: `${current} from ${aside}, where a strata recover that was stopped before it ended had kept it` });
    return steps;
  }
  const kept = `${aside}.${new Date().toISOString().replace(/[:.]/g, "-")}`;
  renameSync(aside, kept);
  const why = reads ? `${current} reads (a copy that recover restored, or a run's state since)`
    : currentForm === "not JSON" ? `${current} is another file cut short, written since`
    : `${current} is not cut short (JSON Pulumi cannot read: a copy that recover was trying, or a newer CLI's state; or a file strata recover cannot read), and which it is cannot be told here`;
  steps.push({ action: "kept checkpoint", detail: `${aside}, a checkpoint cut short that a strata recover stopped before it ended had kept aside, is now ${kept}: ${why}, so it was left as it is; if the stack seems older than it should be, compare ${current} with it and with ${current}.bak` });
  return steps;
}

/**
 * Gives `current` the second name `aside`: a hard link, or where the file system has none, a copy
 * written under a temp name and renamed, so a half-written aside file never bears the name.
 */
function keepAside(current: string, aside: string): void {
  try {
    linkSync(current, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") throw error;
    copyFileSync(current, `${aside}.tmp`);
    renameSync(`${aside}.tmp`, aside);
  }
}

/** Whether a file holds JSON (a checkpoint cut short does not); "unreadable" when it cannot be read to tell (too large, no permission). */
function jsonForm(file: string): "JSON" | "not JSON" | "unreadable" {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return "unreadable";
  }
  try {
    JSON.parse(text);
    return "JSON";
  } catch {
    return "not JSON";
  }
}

/** Files, the one written last first. */
function newestFirst(files: readonly string[]): string[] {
  return [...files].sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
}

export async function recoverStack(options: RecoverOptions): Promise<RecoveryStep[]> {
  const steps: RecoveryStep[] = [];
  const backendDir = fileBackendDir(options.env.PULUMI_BACKEND_URL);
  const stacksDir = backendDir === undefined ? undefined : checkpointDir(backendDir, options.project, options.stack);
  const lockDir = backendDir === undefined ? undefined : path.join(backendDir, stackLockDir(options.project, options.stack));
  const backendUrl = options.env.PULUMI_BACKEND_URL ?? process.env.PULUMI_BACKEND_URL;
  // Who holds the lock is settled before anything is touched: a lock whose owner may be running stops recovery.
  const locks = lockDir !== undefined ? fileLocks(lockDir)
    : backendUrl?.startsWith("postgres://") === true ? await postgresLocks(backendUrl, options.project, options.stack, options.env, recoverRefusal(options.stack))
    : undefined;
  const store = ownerStore(backendUrl, options.env);
  const records = locks === undefined || locks.length === 0 ? { owners: [] } : await ownerRecordsOf(store, options.project, options.stack);
  const released = locks === undefined ? undefined : await releasableLocks(locks, records, options.force === true, options.stack);
  if (backendDir !== undefined && stacksDir !== undefined) {
    // The lock folder: only the lock files judged above (a temp file that appeared since may be a run starting now).
    const lockFiles = (locks ?? []).map((lock) => lock.where);
    const files = [
      ...readdirSync(stacksDir).filter((entry) => entry.startsWith(`${options.stack}.json`)).map((entry) => path.join(stacksDir, entry)),
      ...lockFiles.map((file) => `${file}.attrs`).filter((file) => existsSync(file)),
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
    for (const lock of locks ?? []) {
      if (lock.tempAgeMs === undefined) continue;
      rmSync(lock.where, { force: true });
      steps.push({ action: "removed temp file", detail: `${lock.where}, a lock never renamed into place (${released?.find((line) => line.startsWith(lock.where))?.slice(lock.where.length + 2) ?? "its owner has ended"})` });
    }
  }
  // Only a stack kept as plain JSON alone: the backups known here are plain, and one written over a
  // compressed checkpoint would be read in its place (Pulumi reads the form written last), though it
  // may be the state from before the stack was compressed. A compressed stack stays unreadable: said below.
  const plainOnly = stacksDir !== undefined && checkpointsIn(stacksDir, options.stack).join() === `${options.stack}.json`;
  const current = stacksDir === undefined ? undefined : path.join(stacksDir, `${options.stack}.json`);
  if (current !== undefined && plainOnly) steps.push(...await putBackAside(current, options));
  // Only a checkpoint cut short (not JSON: a write the machine lost before it reached the disk) is
  // replaced. One that is JSON and that Pulumi still cannot read (written by a newer CLI, an export
  // failing for another reason) is the stack's true state, and an older copy put in its place would
  // roll the stack back; one that cannot be read at all is not judged. The errors below say which.
  const currentForm = plainOnly && current !== undefined ? jsonForm(current) : undefined;
  /** Whether a copy was looked for, and the JSON copy Pulumi refused, with why. */
  let copiesSought = false;
  let refusedCopy: string | undefined;
  let restored: string | undefined;
  if (backendDir !== undefined && stacksDir !== undefined && current !== undefined && currentForm === "not JSON" && (await pulumi(["stack", "export"], options)).code !== 0) {
    copiesSought = true;
    // The checkpoint as it is keeps a second name first, and the copy takes its place by a rename:
    // whatever stops recover midway (a full disk, a kill), the original is on disk under that name,
    // and the next recover finds it there (putBackAside).
    const aside = asideOf(current);
    keepAside(current, aside);
    // The newest JSON copy only: one Pulumi refuses (a newer CLI's) is newer than the copies after
    // it, and restoring one of those would go back past it unseen. The error then names it.
    const candidate = checkpointCandidates(backendDir, options.project, options.stack, stacksDir).find((file) => jsonForm(file) === "JSON");
    /** The copy in place, when one is. */
    let placed: string | undefined;
    /** Where the checkpoint is left: put back (or its second name let go, no copy placed) unless the copy was read. */
    const settle = (): void => {
      if (restored === undefined && placed !== undefined) renameSync(aside, current);
      else rmSync(aside);
    };
    try {
      if (candidate !== undefined) {
        copyFileSync(candidate, `${current}.restoring`);
        renameSync(`${current}.restoring`, current);
        placed = candidate;
        rmSync(`${current}.attrs`, { force: true });
        const exported = await pulumi(["stack", "export"], options);
        if (exported.code === 0) restored = `${current} from ${candidate}`;
        else refusedCopy = `${candidate}: ${exported.stderr.trim().split("\n")[0] ?? ""}`;
      }
    } catch (error) {
      // Stopped while trying the copy (a full disk): the checkpoint put back as it was, where it can be.
      rmSync(`${current}.restoring`, { force: true });
      let where = `${current} is as it was`;
      try {
        settle();
      } catch {
        where = placed !== undefined ? `${current} holds a copy of ${placed} (an older state), and the checkpoint as the write left it is ${aside}: put it back as ${current} by hand (mv)` : `${current} is as it was; ${aside} is a second name of it, which the next strata recover removes`;
      }
      throw new Error(`strata recover stopped while it tried older copies of ${current}: ${String(error)}. ${where}. fix: free what the error names, then strata recover again`, { cause: error });
    }
    try {
      settle();
    } catch (error) {
      const where = restored !== undefined ? `${current} was restored (${restored}), an older state; ${aside} is the checkpoint as the write left it: remove it by hand, or the next strata recover renames it out of the way`
        : placed !== undefined ? `${current} holds a copy of ${placed} that Pulumi did not read, and the checkpoint as the write left it is ${aside}: put it back as ${current} by hand (mv)`
        : `${current} is as it was; ${aside} is a second name of it: remove it by hand, or the next strata recover does`;
      throw new Error(`strata recover could not ${restored === undefined && placed !== undefined ? `put ${current} back as it was` : `remove ${aside}`}: ${String(error)}. ${where}`, { cause: error });
    }
    if (restored !== undefined) steps.push({ action: "restored checkpoint", detail: restored });
  }
  try {
    await releaseAndClear();
  } catch (error) {
    // What was done to the checkpoint before a later step failed is said with its error (the CLI
    // prints the steps only of a recovery that ends well): after a restore, the stack holds an older state.
    const done = steps.filter((step) => ["restored checkpoint", "put back checkpoint", "kept checkpoint"].includes(step.action));
    if (done.length > 0 && error instanceof Error) error.message += `\n(strata recover had done this before: ${done.map((step) => `${step.action}: ${step.detail}`).join("; ")}${restored === undefined ? "" : "; the stack now holds that older state"})`;
    throw error;
  }
  return steps;

  /** The rest of recovery: the lock released, plugins ended, pending operations cleared. */
  async function releaseAndClear(): Promise<void> {
    // `pulumi cancel` succeeds with or without a lock: the locks were read first, so the report is true.
    // A backend whose locks Strata cannot read (neither file nor PostgreSQL) is asked to cancel only with --force.
    if (released === undefined && options.force !== true) {
      throw new RecoveryRefused(`stack ${options.stack}: strata recover cannot see who holds locks on this backend (${backendUrl ?? "unknown"}); nothing was changed. fix: make sure no update of the stack is running, then strata recover --stack ${options.stack} --force`);
    }
    // Plugins a killed engine left running hold no lock, but they hold memory and, the docker
    // provider, build sessions: those of this stack's runs whose engine is gone are ended.
    if (backendUrl !== undefined) for (const plugin of endLeftoverPlugins({ stack: options.stack, backendUrl })) steps.push({ action: "ended leftover plugin", detail: plugin });
    if (released === undefined || released.length > 0) {
      // `pulumi cancel` releases whatever lock the stack holds then: a run that took the lock since the
      // locks were judged would lose it. Asked again right before; a lock not judged stops recovery.
      if (released !== undefined) {
        const judged = new Set((locks ?? []).map((lock) => lock.where));
        const now = lockDir !== undefined ? fileLocks(lockDir) : backendUrl?.startsWith("postgres://") === true ? await postgresLocks(backendUrl, options.project, options.stack, options.env, recoverRefusal(options.stack)) : [];
        const taken = now.filter((lock) => !judged.has(lock.where));
        if (taken.length > 0) throw new RecoveryRefused(`stack ${options.stack}: a run took the stack's lock while strata recover was working (${taken.map((lock) => lock.where).join(", ")}); the lock was left to it. fix: let that run finish, then strata recover --stack ${options.stack} again if it is needed`);
      }
      const cancel = await pulumi(["cancel", "--yes"], options);
      if (cancel.code !== 0) throw new Error(`pulumi cancel failed:\n${cancel.stderr.trim()}`);
      steps.push({ action: "released lock", detail: released === undefined ? "--force: asked the backend to release the stack's lock" : released.join("; ") });
    }
    await pruneOwnerRecords(store, records);
    const exported = await pulumi(["stack", "export"], options);
    if (exported.code !== 0) {
      // The newest .bak only: Pulumi refreshes the one of the form it writes, and one of a form it left
      // (a plain .bak after a switch to zstd) holds the state from before the switch.
      const kept = stacksDir === undefined ? [] : newestFirst(checkpointNames(options.stack).map((name) => path.join(stacksDir, `${name}.bak`)).filter((file) => existsSync(file)));
      const byHand = stacksDir !== undefined && !plainOnly ? `\nstrata recover restores a checkpoint kept as plain JSON only; this one is compressed (or kept in more than one form). fix: by hand, put back the copy Pulumi kept before its last write (${kept[0] ?? "none here"}), or the newest readable one in ${path.join(backendDir ?? "", ".pulumi", "backups", options.project, options.stack)}, under the name of the form Pulumi wrote last, in ${stacksDir}` : "";
      const olderCopy = current !== undefined && existsSync(`${current}.bak`) ? `${current}.bak` : undefined;
      const why = restored !== undefined ? "\nPulumi read the copy strata recover put in place a moment ago, and cannot now. fix: read Pulumi's error above"
        : currentForm === "JSON" ? `\nstrata recover replaces only a checkpoint cut short, which is not JSON; ${current} is JSON, so it is the stack's state as last written and was left as it is. fix: read Pulumi's error above (a checkpoint written by a newer Pulumi CLI is read by that CLI)${olderCopy === undefined ? "" : `; an older copy, from before the last write, is ${olderCopy}`}`
        : currentForm === "unreadable" ? `\nstrata recover could not read ${current} itself, so it did not judge whether a copy should replace it, and left it as it is. fix: read Pulumi's error above and the file's permissions and size`
        : currentForm === "not JSON" && !copiesSought ? `\n${current} is not JSON, though Pulumi read the stack a moment before, so strata recover sought no copy: it changed meanwhile (a run writing it?). fix: make sure no run of the stack is going on, then strata recover again`
        : currentForm === "not JSON" ? `\n${current} was cut short (it is not JSON) and ${refusedCopy === undefined ? "no readable copy of it is kept here (its .bak, .pulumi/history, .pulumi/backups)" : `its newest JSON copy is one Pulumi refuses too (${refusedCopy}); the older copies after it were not tried, since restoring one would go back past that one unseen, and it was put back as it was`}. fix: put back a copy of the stack's state by hand, or, if none is left, pulumi stack import one you export from elsewhere`
        : "";
      throw new Error(`the stack ${options.stack} still cannot be read:\n${exported.stderr.trim()}${byHand}${why}`);
    }
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
  }
}
