/**
 * A stack's lock as Pulumi's DIY backends keep it (file and PostgreSQL alike): read for
 * `strata recover`, and taken for work that is not an update but must not run beside one.
 *
 * Why Strata takes it at all: `strata ci-clean` deletes manifests by digest, and a registry deletes
 * every tag of that digest with it. A channel run that pushes the same bytes as a change's CI build
 * (the merged change, built again) between ci-clean's last read and its delete would lose its
 * release tag. Holding the channel stack's lock, ci-clean and the channel's runs never overlap.
 *
 * How: as the engine does (pkg/backend/diy/lock.go): look for another lock, write `<id>.json` (pid,
 * user, host, time) in the stack's lock folder, look again, and give up when another is there. So a
 * `pulumi up` refuses while Strata holds it ("currently locked"), and Strata refuses while an
 * update runs. An owner record is written first (lock-owner.ts), so that `strata recover` can tell
 * a killed holder from a live one, as for a killed `strata up`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import path from "node:path";
import { UserError } from "../core/problems.js";
import { checkpointNames, fileBackendDir } from "./file-backend.js";
import { noteInterruption } from "./interruption.js";
import { ownerStore, psql, psqlFailure, recordOwner } from "./lock-owner.js";

/** A stack lock as Pulumi's DIY backends write it. */
export interface StackLock {
  /** Where it is: a file, or a key of the state table. */
  readonly where: string;
  readonly pid?: number;
  readonly hostname?: string;
  readonly username?: string;
  /** When the update took it (RFC 3339). */
  readonly timestamp?: string;
  /** A lock file still being written (`<lock>.json.<hex>.tmp`): its age in ms, from its mtime. */
  readonly tempAgeMs?: number;
}

/** A lock's text as read; one that is not JSON (cut short) names no owner. Pure. */
export function parseLock(where: string, text: string, tempAgeMs?: number): StackLock {
  let lock: { pid?: unknown; hostname?: unknown; username?: unknown; timestamp?: unknown } = {};
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch {
    // A lock cut short by a kill: its owner is unknown, so it only refuses (without --force).
  }
  return {
    where,
    ...(typeof lock.pid === "number" ? { pid: lock.pid } : {}),
    ...(typeof lock.hostname === "string" ? { hostname: lock.hostname } : {}),
    ...(typeof lock.username === "string" ? { username: lock.username } : {}),
    ...(typeof lock.timestamp === "string" ? { timestamp: lock.timestamp } : {}),
    ...(tempAgeMs === undefined ? {} : { tempAgeMs }),
  };
}

/** The stack's lock folder under a backend's root, in the project-scoped layout (meta.yaml version 1). */
export function stackLockDir(project: string, stack: string): string {
  return path.posix.join(".pulumi", "locks", "organization", project, stack);
}

/**
 * The locks of a stack on a file backend, and the lock files still being written
 * (`<id>.json.<hex>.tmp`): Pulumi counts those as locks too, and one may be a run starting now.
 * `everyFile`: also any other file but a metadata sidecar (`.attrs`), as Pulumi's listing counts
 * them, each a lock that names no owner (for taking the lock: anything Pulumi would see refuses).
 */
export function fileLocks(lockDir: string, options: { readonly everyFile?: boolean } = {}): StackLock[] {
  if (!existsSync(lockDir)) return [];
  const counted = (entry: string): boolean => entry.endsWith(".json") || /\.json\.[0-9a-f]+\.tmp$/.test(entry) || (options.everyFile === true && !entry.endsWith(".attrs"));
  return readdirSync(lockDir).filter(counted).flatMap((name) => {
    const file = path.join(lockDir, name);
    let text = "";
    let tempAgeMs: number | undefined;
    try {
      if (name.endsWith(".tmp")) tempAgeMs = Math.max(0, Date.now() - statSync(file).mtimeMs);
      text = readFileSync(file, "utf8");
    } catch {
      // Gone since the listing: a temp file renamed into place is read under its own name next time;
      // a lock gone is parsed as unknown, which only refuses.
      if (name.endsWith(".tmp")) return [];
    }
    return [parseLock(file, text, tempAgeMs)];
  });
}

/** A lock file's name while it is written: Pulumi's own form (`<id>.json.<hex>.tmp`), what fileLocks reports as a lock being written. */
export function lockTempName(file: string): string {
  return `${file}.${randomBytes(8).toString("hex")}.tmp`;
}

/** The state table a PostgreSQL backend URL names (`?table=`, default pulumi_state), or undefined when it is no plain identifier. Pure. */
export function postgresTable(backendUrl: string): string | undefined {
  const table = new URL(backendUrl).searchParams.get("table") ?? "pulumi_state";
  return /^[A-Za-z_][A-Za-z0-9_.]*$/.test(table) ? table : undefined;
}

/** The prefix of every key Pulumi writes in a PostgreSQL backend: the URL's path (the database's name) and "/". Pure. */
export function postgresKeyPrefix(backendUrl: string): string {
  // Decoded, as Go's url.Path is.
  const subDir = decodeURIComponent(new URL(backendUrl).pathname).replace(/^\/+/, "");
  return subDir === "" || subDir.endsWith("/") ? subDir : `${subDir}/`;
}

/**
 * The locks of a stack on Pulumi's PostgreSQL backend: rows of its state table under
 * `<database>/.pulumi/locks/…/<project>/<stack>/`, each `{"data": base64 of the lock}`. Read with
 * psql (Debian's postgresql-client) and the same PGPASSFILE as the engine. `refuse` makes the
 * error for a table that cannot be named safely, a missing psql or a failed read: the caller's words.
 */
export async function postgresLocks(backendUrl: string, project: string, stack: string, env: Readonly<Record<string, string | undefined>>, refuse: (why: "table" | "psql missing" | "read failed", detail: string) => Error): Promise<StackLock[]> {
  const table = postgresTable(backendUrl);
  if (table === undefined) throw refuse("table", new URL(backendUrl).searchParams.get("table") ?? "");
  // Keys start with the database's name as the bucket's prefix: `<db>/.pulumi/locks/organization/<project>/<stack>/<id>.json`.
  const query = `SELECT key, convert_from(decode(data->>'data', 'base64'), 'UTF8') FROM ${table} WHERE key LIKE '%.pulumi/locks/%/' || :'project' || '/' || :'stack' || '/%.json';\n`;
  const answer = await psql(backendUrl, query, { project, stack }, env);
  if (answer.missing) throw refuse("psql missing", "");
  if (answer.code !== 0) throw refuse("read failed", psqlFailure(answer));
  return lockRows(answer.stdout, table);
}

/** The locks in psql's rows of `key<TAB>lock text`. Pure. */
function lockRows(stdout: string, table: string): StackLock[] {
  return stdout.split("\n").filter((line) => line.includes("\t")).map((line) => {
    const [key, text] = line.split("\t") as [string, string];
    return parseLock(`${key} (PostgreSQL table ${table})`, text);
  });
}

/** Refused: the stack is locked by another, or its locks cannot be seen or taken. Nothing was changed. */
export class StackLockRefused extends UserError {}

/** Refused because another holds the lock now (the one refusal that waiting may end). */
export class StackLockHeld extends StackLockRefused {}

/** A lock Strata holds; `release` removes it and its owner record (once; later calls do nothing). */
export interface HeldStackLock {
  readonly where: string;
  /** Why no owner record could be written: a kill of this holder then leaves a lock strata recover releases only with --force. */
  readonly recordFailed?: string;
  release(): Promise<void>;
}

/** Where a backend keeps a stack's locks, and how Strata lists, writes and deletes one there. */
export interface LockPlace {
  readonly describe: string;
  list(): Promise<StackLock[]>;
  write(id: string, content: string): Promise<string>;
  remove(id: string): Promise<void>;
}

/** A backend's layout version from its meta.yaml text (none: the layout before versions, 0). Pure. */
export function layoutVersion(metaYaml: string | undefined): string {
  if (metaYaml === undefined) return "0";
  return /^version:\s*(\d+)\s*$/m.exec(metaYaml)?.[1] ?? "unknown";
}

function layoutRefusal(version: string, backend: string, stack: string, purpose: string): StackLockRefused {
  const layout = version === "0" ? "the layout before project-scoped stacks (no .pulumi/meta.yaml, or version 0)" : `layout version ${version} (.pulumi/meta.yaml)`;
  return new StackLockRefused(`${purpose}: cannot take stack ${stack}'s lock: the backend ${backend} has ${layout}, and Strata knows where Pulumi keeps locks only in version 1 (project-scoped stacks, what a new backend gets); nothing was changed. fix: move the project's stacks to a backend in that layout (pulumi stack export, then import into a new backend), or clean the change's tags by hand while no update of ${stack} runs (--dry-run lists them)`);
}

/** The stack's checkpoint keys under a backend's root (project-scoped layout): Pulumi writes one of them. */
function checkpointKeys(project: string, stack: string): string[] {
  return checkpointNames(stack).map((name) => path.posix.join(".pulumi", "stacks", project, name));
}

/** A lock in a backend the channel's runs do not use guards nothing: refused, naming the backend. */
function notThereRefusal(backend: string, project: string, stack: string, purpose: string): StackLockRefused {
  return new StackLockRefused(`${purpose}: stack ${stack} (project ${project}) is not in the backend ${backend}, so a lock taken there would hold off no run of the channel; nothing was changed. fix: run it with PULUMI_BACKEND_URL naming the backend the channel's runs use (scripts/env.sh sets this clone's; a shared one for many runners: STRATA_BACKEND=postgres)`);
}

function filePlace(backendDir: string, project: string, stack: string, purpose: string): LockPlace {
  if (!existsSync(backendDir)) throw new StackLockRefused(`${purpose}: the backend folder ${backendDir} does not exist; nothing was changed. fix: run it with PULUMI_BACKEND_URL naming the backend the channel's runs use`);
  let metaYaml: string | undefined;
  try {
    metaYaml = readFileSync(path.join(backendDir, ".pulumi", "meta.yaml"), "utf8");
  } catch {
    metaYaml = undefined;
  }
  const version = layoutVersion(metaYaml);
  if (version !== "1") throw layoutRefusal(version, backendDir, stack, purpose);
  if (!checkpointKeys(project, stack).some((key) => existsSync(path.join(backendDir, key)))) throw notThereRefusal(backendDir, project, stack, purpose);
  const dir = path.join(backendDir, stackLockDir(project, stack));
  return {
    describe: dir,
    list: async () => fileLocks(dir, { everyFile: true }),
    write: async (id, content) => {
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${id}.json`);
      // Renamed into place whole, so Pulumi never reads half a lock; the temp file is named as
      // Pulumi's own (`<id>.json.<hex>.tmp`), which strata recover knows: one a kill left behind
      // blocks an up as Pulumi's would, and recover removes it the same way.
      const temporary = lockTempName(file);
      try {
        writeFileSync(temporary, content);
        renameSync(temporary, file);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw error;
      }
      return file;
    },
    remove: async (id) => rmSync(path.join(dir, `${id}.json`), { force: true }),
  };
}

async function postgresPlace(backendUrl: string, project: string, stack: string, env: Readonly<Record<string, string | undefined>>, purpose: string): Promise<LockPlace> {
  const table = postgresTable(backendUrl);
  if (table === undefined) throw new StackLockRefused(`${purpose}: the backend URL names the state table "${new URL(backendUrl).searchParams.get("table") ?? ""}", which Strata cannot name safely in SQL; nothing was changed. fix: use a table name of letters, digits and underscores`);
  const run = async (sql: string, variables: Record<string, string>): Promise<string> => {
    const answer = await psql(backendUrl, sql, variables, env);
    if (answer.missing) throw new StackLockRefused(`${purpose}: Strata takes a PostgreSQL backend's stack lock with psql, which is not installed. fix: apt-get install postgresql-client`);
    if (answer.code !== 0) throw new StackLockRefused(`${purpose}: cannot read or write stack ${stack}'s lock in the PostgreSQL backend (${psqlFailure(answer)}). fix: check that the database runs (STRATA_BACKEND=postgres scripts/services.sh status) and PGPASSFILE, then run it again`);
    return answer.stdout;
  };
  const prefix = postgresKeyPrefix(backendUrl);
  const meta = await run(`SELECT convert_from(decode(data->>'data', 'base64'), 'UTF8') FROM ${table} WHERE key = :'key';\n`, { key: `${prefix}.pulumi/meta.yaml` });
  const version = layoutVersion(meta.trim() === "" ? undefined : meta);
  if (version !== "1") throw layoutRefusal(version, `PostgreSQL table ${table}`, stack, purpose);
  const [json, gzipped, zstd] = checkpointKeys(project, stack).map((key) => `${prefix}${key}`) as [string, string, string];
  const found = await run(`SELECT count(*) FROM ${table} WHERE key IN (:'json', :'gzipped', :'zstd');\n`, { json, gzipped, zstd });
  if (found.trim() === "0") throw notThereRefusal(`PostgreSQL table ${table}`, project, stack, purpose);
  // Exactly the stack's folder, as Pulumi lists it (one level, "/" as the delimiter).
  const dir = `${prefix}${stackLockDir(project, stack)}/`;
  const keyOf = (id: string): string => `${dir}${id}.json`;
  return {
    describe: `${dir} (PostgreSQL table ${table})`,
    list: async () => {
      return lockRows(await run(`SELECT key, convert_from(decode(data->>'data', 'base64'), 'UTF8') FROM ${table} WHERE starts_with(key, :'dir') AND position('/' in substr(key, length(:'dir') + 1)) = 0;\n`, { dir }), table);
    },
    write: async (id, content) => {
      // The row as Pulumi's own writer puts it: {"data": base64 of the bytes}.
      await run(`INSERT INTO ${table} (key, data) VALUES (:'key', :'data'::json) ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, updated_at = now();\n`,
        { key: keyOf(id), data: JSON.stringify({ data: Buffer.from(content).toString("base64") }) });
      return `${keyOf(id)} (PostgreSQL table ${table})`;
    },
    remove: async (id) => {
      await run(`DELETE FROM ${table} WHERE key = :'key';\n`, { key: keyOf(id) });
    },
  };
}

/** Who holds a lock, for a message. Pure. */
export function lockHolder(lock: StackLock): string {
  if (lock.pid === undefined || lock.hostname === undefined) return `${lock.where} (it names no owner: a lock being written, or one cut short)`;
  return `${lock.where}: ${lock.username ?? "?"}@${lock.hostname} (pid ${lock.pid}) at ${lock.timestamp ?? "an unknown time"}`;
}

export interface HoldOptions {
  readonly backendUrl: string | undefined;
  readonly project: string;
  readonly stack: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The command taking it, for messages (`strata ci-clean`). */
  readonly purpose: string;
  /** How long to keep trying while another holds it (ms; default 0: refuse at once). */
  readonly waitMs?: number;
  /** How long between two tries (ms; default 2000). */
  readonly retryMs?: number;
}

/**
 * Takes the stack's lock as Pulumi does, or refuses (StackLockRefused) when another holds it, when
 * the backend is neither a file nor a PostgreSQL backend, or when its locks cannot be read: Strata
 * cannot see who holds a lock there, so it does not go on as if nobody did.
 */
export async function holdStackLock(options: HoldOptions): Promise<HeldStackLock> {
  const { backendUrl, project, stack, purpose } = options;
  let backendDir: string | undefined;
  try {
    backendDir = fileBackendDir(backendUrl);
  } catch (error) {
    throw new StackLockRefused(`${purpose}: PULUMI_BACKEND_URL ${backendUrl ?? ""} is not a file URL Strata can read (${error instanceof Error ? error.message : String(error)}); nothing was changed. fix: name the backend folder by its absolute path, file:///path/to/state`);
  }
  const place = backendDir !== undefined ? filePlace(backendDir, project, stack, purpose)
    : backendUrl?.startsWith("postgres://") === true || backendUrl?.startsWith("postgresql://") === true ? await postgresPlace(backendUrl, project, stack, options.env, purpose)
    : undefined;
  if (place === undefined) throw new StackLockRefused(`${purpose}: cannot take stack ${stack}'s lock on the backend ${backendUrl ?? "(none set)"}: Strata takes locks on file and PostgreSQL backends only; nothing was changed. fix: run it where PULUMI_BACKEND_URL names the channel's file or PostgreSQL backend`);
  return takeLockWaiting(place, options);
}

/** takeLock, tried again while another holds it (a channel run) until waitMs is spent; any other refusal ends at once. */
export async function takeLockWaiting(place: LockPlace, options: HoldOptions): Promise<HeldStackLock> {
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    try {
      return await takeLock(place, options);
    } catch (error) {
      if (!(error instanceof StackLockHeld) || Date.now() >= deadline) {
        if (error instanceof StackLockHeld && (options.waitMs ?? 0) > 0) throw new StackLockHeld(`${error.message} (waited ${Math.round((options.waitMs ?? 0) / 1000)} s)`);
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.retryMs ?? 2000, Math.max(0, deadline - Date.now()))));
    }
  }
}

/**
 * The engine's protocol on one place: no other lock, the owner record, our lock, and no other lock
 * still (two takers at once each see the other's, and both give up: never both go on).
 */
export async function takeLock(place: LockPlace, options: HoldOptions): Promise<HeldStackLock> {
  const { backendUrl, project, stack, purpose } = options;
  const lockedBy = (locks: readonly StackLock[]): StackLockHeld => new StackLockHeld(`${purpose}: stack ${stack} is locked by another run, so nothing was changed: ${locks.map(lockHolder).join("; ")}. fix: wait for that run to end and run it again (--wait <seconds> keeps trying); if it was killed, scripts/strata recover --stack ${stack} releases its lock`);
  const before = await place.list();
  if (before.length > 0) throw lockedBy(before);
  // The owner record first: recover matches a lock to a record written just before it.
  const recorded = await recordOwner(ownerStore(backendUrl, options.env), project, stack, process.pid);
  const id = randomUUID();
  const removeRecord = async (): Promise<void> => {
    if ("remove" in recorded) await recorded.remove().catch(() => undefined);
  };
  let where: string;
  try {
    where = await place.write(id, JSON.stringify({ pid: process.pid, username: userInfo().username, hostname: hostname(), timestamp: new Date().toISOString() }));
  } catch (error) {
    await place.remove(id).catch(() => undefined);
    await removeRecord();
    throw error;
  }
  let released = false;
  /** Gives up our lock after a refusal; when it cannot, says that it stays (never "nothing was changed"). */
  const releaseOrSay = async (refusal: string): Promise<void> => {
    try {
      await release();
    } catch (releaseError) {
      throw new StackLockRefused(`${refusal}; and this command's own lock stays: ${releaseError instanceof Error ? releaseError.message : String(releaseError)}`);
    }
  };
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    try {
      await place.remove(id);
    } catch (error) {
      throw new StackLockRefused(`${purpose}: could not release stack ${stack}'s lock ${where} (${error instanceof Error ? error.message : String(error)}). fix: scripts/strata recover --stack ${stack} releases it once this command has ended`);
    }
    await removeRecord();
  };
  let others: StackLock[];
  try {
    others = (await place.list()).filter((lock) => lock.where !== where);
  } catch (error) {
    await releaseOrSay(error instanceof Error ? error.message : String(error));
    throw error;
  }
  if (others.length > 0) {
    await releaseOrSay(`${purpose}: stack ${stack} is locked by another run: ${others.map(lockHolder).join("; ")}`);
    throw lockedBy(others);
  }
  return { where, release, ...("failed" in recorded ? { recordFailed: recorded.failed } : {}) };
}

/** What `work` returned, and why the lock could not be released after it, if it could not (it then stays). */
export interface LockedResult<T> {
  readonly value: T;
  readonly releaseFailed?: string;
}

/** What withStackLock may be given besides the lock and the work. */
export interface LockedWork {
  /** Where notes go (standard error). */
  readonly note?: (text: string) => void;
  /** A failure after which the lock must stay (a write that got no answer may still land): the error says so and names recover. */
  readonly keepLockOn?: (error: unknown) => boolean;
  /** Test seams: how the lock is taken, and how a second signal ends the process. */
  readonly hold?: (options: HoldOptions) => Promise<HeldStackLock>;
  readonly kill?: (signal: NodeJS.Signals) => void;
}

/**
 * Runs `work` holding the stack's lock, and releases it once `work` has ended, however it ends.
 * A SIGINT or SIGTERM while it runs aborts `stop`: the work sends nothing more (each step checks it
 * before a delete) and ends with the abort's reason; only then is the lock released, so no delete
 * lands after the release. bin/strata.js then ends by that signal (interruption.ts). A second
 * signal ends the process at once, the lock left for strata recover (the owner record proves this
 * process gone). A failure `keepLockOn` names keeps the lock (said, with the fix). A release that
 * fails after the work succeeded is returned, not thrown: what the work did is still reported.
 */
export async function withStackLock<T>(options: HoldOptions, work: (stop: AbortSignal) => Promise<T>, extra: LockedWork = {}): Promise<LockedResult<T>> {
  const note = extra.note ?? (() => undefined);
  const held = await (extra.hold ?? holdStackLock)(options);
  if (held.recordFailed !== undefined) note(`note: strata could not record who holds stack ${options.stack}'s lock (${held.recordFailed}); if this command is killed, strata recover will need --force\n`);
  const controller = new AbortController();
  const stopListening = (): void => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (controller.signal.aborted) {
      stopListening();
      (extra.kill ?? ((again: NodeJS.Signals) => process.kill(process.pid, again)))(signal);
      return;
    }
    noteInterruption(signal);
    note(`${options.purpose}: ${signal}: stopping once the request in flight has ended, then giving up stack ${options.stack}'s lock (again to end now: the lock then stays for strata recover)\n`);
    controller.abort(new StackLockRefused(`${options.purpose}: stopped by ${signal}: no delete was sent after the one in flight; what was deleted stays deleted, and running it again finishes the rest`));
  }
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let value: T;
  try {
    value = await work(controller.signal);
  } catch (error) {
    stopListening();
    if (extra.keepLockOn?.(error) === true) {
      throw new StackLockRefused(`${error instanceof Error ? error.message : String(error)}; the registry may still carry it out, so stack ${options.stack}'s lock stays (${held.where}) and no run of the channel starts meanwhile. fix: once the registry answers again (${options.purpose} --dry-run reads it), scripts/strata recover --stack ${options.stack}${held.recordFailed === undefined ? "" : " --force (no owner record was written)"} releases the lock (this command has ended); then run this again`);
    }
    try {
      await held.release();
    } catch (releaseError) {
      note(`${releaseError instanceof Error ? releaseError.message : String(releaseError)}\n`);
    }
    throw error;
  }
  stopListening();
  try {
    await held.release();
  } catch (releaseError) {
    return { value, releaseFailed: releaseError instanceof Error ? releaseError.message : String(releaseError) };
  }
  return { value };
}
