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
}

function pulumi(args: readonly string[], options: RecoverOptions): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("pulumi", [...args, "--stack", options.stack], { cwd: options.projectDir, env: { ...process.env, ...options.env }, maxBuffer: 512 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

/**
 * Stops when a lock belongs to an update still running on this machine:
 * recovery is for runs that were killed, not for taking a stack from one
 * that is working. (A lock from another machine cannot be checked from here.)
 */
function refuseLiveLock(lockDir: string): void {
  for (const name of readdirSync(lockDir).filter((entry) => entry.endsWith(".json"))) {
    let lock: { pid?: number; hostname?: string };
    try {
      lock = JSON.parse(readFileSync(path.join(lockDir, name), "utf8")) as { pid?: number; hostname?: string };
    } catch {
      continue;
    }
    if (lock.hostname !== hostname() || typeof lock.pid !== "number") continue;
    let alive = true;
    try {
      process.kill(lock.pid, 0);
    } catch {
      alive = false;
    }
    if (alive) throw new Error(`an update of this stack is still running here (pid ${lock.pid}); let it finish or stop it, then run strata recover again`);
  }
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
  if (lockDir !== undefined && existsSync(lockDir)) refuseLiveLock(lockDir);
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
  // `pulumi cancel` succeeds with or without a lock: on a file backend, look first, so the report is true.
  const locks = backendDir === undefined ? undefined : lockDir !== undefined && existsSync(lockDir) ? readdirSync(lockDir).filter((name) => name.endsWith(".json")) : [];
  if (locks === undefined || locks.length > 0) {
    const cancel = await pulumi(["cancel", "--yes"], options);
    if (cancel.code !== 0) throw new Error(`pulumi cancel failed:\n${cancel.stderr.trim()}`);
    steps.push({ action: "released lock", detail: locks === undefined ? "asked the backend to release the stack's lock" : `removed ${locks.join(", ")}, left by an update that is not running any more` });
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
