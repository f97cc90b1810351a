/**
 * Who owns a stack's lock, as Strata records it. Pulumi's DIY backends (file and PostgreSQL) write
 * the lock with a pid and a host name only, and a host name says little: two CI containers with
 * the same fixed host name live in different PID namespaces, so a live run in one looks dead from
 * the other. Strata cannot add fields to Pulumi's lock, so `strata up` writes an owner record of
 * its own beside each run it starts: host, boot id, PID namespace, the engine's pid and its start
 * time. `strata recover` matches the lock to it and releases the lock without --force only when the
 * record proves the owner gone in this very boot and namespace.
 *
 * Where the record lives: in the same store as the lock, so whoever can see the lock sees the
 * record, from any container that shares only the backend. File backend: a folder beside Pulumi's
 * (`<backend>/.strata/lock-owners/<project>/<stack>/`). PostgreSQL backend: a table of Strata's own,
 * `strata_lock_owners`, in the same database (Pulumi's table is left to Pulumi).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { writeFileWhole } from "../core/files.js";
import { fileBackendDir } from "./file-backend.js";

/** The record `strata up` writes when it starts the engine. */
export interface LockOwner {
  readonly project: string;
  readonly stack: string;
  readonly host: string;
  /** /proc/sys/kernel/random/boot_id: one per boot of one kernel. */
  readonly bootId?: string;
  /** /proc/self/ns/pid, e.g. `pid:[4026531836]`: the namespace the pid below is counted in. */
  readonly pidNamespace?: string;
  /** The engine's pid (the one Pulumi's lock names). */
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot): tells the process from a later one with the same pid. */
  readonly startTicks?: number;
  /** When the record was written (ISO), just after the engine started and before it took the lock. */
  readonly writtenAt: string;
}

/** What identifies the machine and namespace a process runs in; a field it cannot read is left out. */
export interface Whereabouts {
  readonly host: string;
  readonly bootId?: string;
  readonly pidNamespace?: string;
}

function readOrUndefined(read: () => string): string | undefined {
  try {
    const value = read().trim();
    return value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

/** This process's host name, boot id and PID namespace. */
export function thisMachine(): Whereabouts {
  const bootId = readOrUndefined(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8"));
  const pidNamespace = readOrUndefined(() => readlinkSync("/proc/self/ns/pid"));
  return { host: hostname(), ...(bootId === undefined ? {} : { bootId }), ...(pidNamespace === undefined ? {} : { pidNamespace }) };
}

/** Field 22 (starttime) of a /proc/<pid>/stat line, counted after the command in parentheses. Pure. */
export function startTicksOf(stat: string): number | undefined {
  // Fields 3.. follow ") "; starttime is field 22, the 20th of them.
  const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  return Number.isInteger(ticks) ? ticks : undefined;
}

/** A process's start time from /proc, or undefined when it cannot be read. */
export function processStartTicks(pid: number): number | undefined {
  const stat = readOrUndefined(() => readFileSync(`/proc/${pid}/stat`, "utf8"));
  return stat === undefined ? undefined : startTicksOf(stat);
}

/** The project's name, from its Pulumi.yaml. */
export function projectName(projectDir: string): string {
  return (parse(readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as { name: string }).name;
}

/** Where a backend keeps owner records: read, written and removed the same way for both backends. */
export interface OwnerStore {
  /** Where the records are, for messages. */
  readonly where: string;
  write(owner: LockOwner): Promise<void>;
  remove(owner: LockOwner): Promise<void>;
  /** Every record of a stack; fails (throws) when the store cannot be read, which callers treat as "cannot tell". */
  list(project: string, stack: string): Promise<LockOwner[]>;
}

/** One record's name: the process it is about, in its boot and namespace. */
function recordKey(owner: LockOwner): string {
  const namespace = owner.pidNamespace?.replace(/\D/g, "") ?? "nons";
  return `${owner.host}.${owner.bootId ?? "noboot"}.${namespace}.${owner.pid}.${owner.startTicks ?? "nostart"}`.replace(/[^A-Za-z0-9._-]/g, "_");
}

/** A record as read back; undefined when it is not one (a write cut short). Pure. */
export function parseOwner(text: string): LockOwner | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const text_ = (key: string): string | undefined => (typeof value[key] === "string" ? (value[key] as string) : undefined);
  const { project, stack, host, writtenAt } = { project: text_("project"), stack: text_("stack"), host: text_("host"), writtenAt: text_("writtenAt") };
  if (project === undefined || stack === undefined || host === undefined || writtenAt === undefined || !Number.isInteger(value.pid)) return undefined;
  const bootId = text_("bootId");
  const pidNamespace = text_("pidNamespace");
  return {
    project, stack, host, writtenAt, pid: value.pid as number,
    ...(bootId === undefined ? {} : { bootId }),
    ...(pidNamespace === undefined ? {} : { pidNamespace }),
    ...(Number.isInteger(value.startTicks) ? { startTicks: value.startTicks as number } : {}),
  };
}

function fileStore(backendDir: string): OwnerStore {
  const root = path.join(backendDir, ".strata", "lock-owners");
  const dirOf = (project: string, stack: string): string => path.join(root, project, stack);
  return {
    where: root,
    async write(owner) {
      const dir = dirOf(owner.project, owner.stack);
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${recordKey(owner)}.json`);
      // Whole: a reader never sees half a record.
      writeFileWhole(file, `${JSON.stringify(owner)}\n`);
    },
    async remove(owner) {
      rmSync(path.join(dirOf(owner.project, owner.stack), `${recordKey(owner)}.json`), { force: true });
    },
    async list(project, stack) {
      const dir = dirOf(project, stack);
      if (!existsSync(dir)) return [];
      return readdirSync(dir).filter((name) => name.endsWith(".json")).flatMap((name) => {
        const owner = readOrUndefined(() => readFileSync(path.join(dir, name), "utf8"));
        const parsed = owner === undefined ? undefined : parseOwner(owner);
        return parsed === undefined ? [] : [parsed];
      });
    },
  };
}

/** Runs SQL through psql on the backend's database, `:'name'` variables quoted by psql itself. */
export function psql(backendUrl: string, sql: string, variables: Readonly<Record<string, string>>, env: Readonly<Record<string, string | undefined>>): Promise<{ code: number; stdout: string; stderr: string; missing: boolean }> {
  const url = new URL(backendUrl);
  // The query as libpq reads it, not as URLSearchParams would write it again: %XX decoded, a `+`
  // itself, the last of a name that comes twice. Pulumi's `table` is not libpq's.
  const parameters = url.search.replace(/^\?/, "").split("&").filter((pair) => pair !== "").map((pair) => {
    const at = pair.indexOf("=");
    return { name: decodeURIComponent(at < 0 ? pair : pair.slice(0, at)), value: at < 0 ? "" : decodeURIComponent(pair.slice(at + 1)), raw: pair };
  });
  // A password in the URL (its user part, or libpq's `password` parameter, which libpq reads after
  // the user part) goes to psql in its environment, not on its command line, which any user of the
  // machine can read (/proc/<pid>/cmdline).
  const password = parameters.filter((parameter) => parameter.name === "password").at(-1)?.value ?? (url.password === "" ? undefined : decodeURIComponent(url.password));
  const kept = parameters.filter((parameter) => parameter.name !== "password" && parameter.name !== "table").map((parameter) => parameter.raw);
  url.search = kept.length === 0 ? "" : `?${kept.join("&")}`;
  url.password = "";
  const binary = ["psql", "/usr/lib/postgresql/15/bin/psql"].find((candidate) => candidate === "psql" || existsSync(candidate)) ?? "psql";
  const args = ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", ...Object.entries(variables).flatMap(([name, value]) => ["-v", `${name}=${value}`]), url.toString(), "-f", "-"];
  return new Promise((resolve) => {
    const child = execFile(binary, args, { env: { ...process.env, ...env, ...(password === undefined ? {} : { PGPASSWORD: password }) } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : 1, stdout, stderr, missing: (error as { code?: string } | null)?.code === "ENOENT" });
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(sql);
  });
}

/** The first line of what psql said, for a message. */
export function psqlFailure(answer: { stderr: string; missing: boolean }): string {
  return answer.missing ? "psql is not installed (apt-get install postgresql-client)" : answer.stderr.trim().split("\n")[0] ?? "psql failed";
}

const OWNER_TABLE = "strata_lock_owners";

function postgresStore(backendUrl: string, env: Readonly<Record<string, string | undefined>>): OwnerStore {
  const run = async (sql: string, variables: Record<string, string>): Promise<string> => {
    const answer = await psql(backendUrl, sql, variables, env);
    if (answer.code !== 0) throw new Error(psqlFailure(answer));
    return answer.stdout;
  };
  const create = `CREATE TABLE IF NOT EXISTS ${OWNER_TABLE} (key text PRIMARY KEY, project text NOT NULL, stack text NOT NULL, record text NOT NULL);\n`;
  return {
    where: `the PostgreSQL table ${OWNER_TABLE}`,
    async write(owner) {
      const insert = (): Promise<string> => run(`${create}INSERT INTO ${OWNER_TABLE} (key, project, stack, record) VALUES (:'key', :'project', :'stack', :'record') ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record;\n`,
        { key: recordKey(owner), project: owner.project, stack: owner.stack, record: JSON.stringify(owner) });
      // Two first runs creating the table at once: one may lose PostgreSQL's race on the catalog; once more then finds it.
      await insert().catch(insert);
    },
    async remove(owner) {
      await run(`DELETE FROM ${OWNER_TABLE} WHERE key = :'key' AND project = :'project' AND stack = :'stack';\n`, { key: recordKey(owner), project: owner.project, stack: owner.stack })
        .catch((error: unknown) => {
          // No table yet: nothing was recorded, so nothing to remove.
          if (!/does not exist/.test(String(error))) throw error;
        });
    },
    async list(project, stack) {
      const exists = await run(`SELECT to_regclass(:'table') IS NOT NULL;\n`, { table: OWNER_TABLE });
      if (exists.trim() !== "t") return [];
      const stdout = await run(`SELECT record FROM ${OWNER_TABLE} WHERE project = :'project' AND stack = :'stack';\n`, { project, stack });
      return stdout.split("\n").flatMap((line) => {
        const owner = line.trim() === "" ? undefined : parseOwner(line);
        return owner === undefined ? [] : [owner];
      });
    },
  };
}

/** The owner records of a backend: file and PostgreSQL; undefined for a backend Strata cannot write to. */
export function ownerStore(backendUrl: string | undefined, env: Readonly<Record<string, string | undefined>>): OwnerStore | undefined {
  if (backendUrl?.startsWith("file://") === true) return fileStore(fileBackendDir(backendUrl) as string);
  if (backendUrl?.startsWith("postgres://") === true || backendUrl?.startsWith("postgresql://") === true) return postgresStore(backendUrl, env);
  return undefined;
}

/**
 * The record of an engine process just started, written to the backend's store. Resolves with a
 * function that removes it (once the engine ended on its own, having released its lock), or with
 * the reason it could not be written: the run goes on, but a kill of it would then need --force.
 */
export async function recordOwner(store: OwnerStore | undefined, project: string, stack: string, pid: number): Promise<{ remove: () => Promise<void> } | { failed: string }> {
  if (store === undefined) return { failed: "the backend is neither a file nor a PostgreSQL backend" };
  const startTicks = processStartTicks(pid);
  const owner: LockOwner = { project, stack, ...thisMachine(), pid, ...(startTicks === undefined ? {} : { startTicks }), writtenAt: new Date().toISOString() };
  try {
    await store.write(owner);
  } catch (error) {
    return { failed: `${store.where}: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { remove: () => store.remove(owner) };
}
