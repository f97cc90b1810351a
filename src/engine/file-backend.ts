/**
 * Pulumi's `file://` (DIY) backend as laid out on disk: where a stack's checkpoint is, and what it
 * holds. Reading it directly spares a `pulumi stack export` (a Go process, about 0.3 CPU-s) on the
 * critical path of every run; anything this does not recognise is "do not know", and the caller
 * asks the Pulumi CLI as before.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

function accountHome(): string {
  try {
    return userInfo().homedir;
  } catch {
    return homedir();
  }
}

/** The folder of a `file://` backend URL (`file://~` as Pulumi reads it: the home folder); undefined for other backends. */
export function fileBackendDir(backendUrl: string | undefined): string | undefined {
  if (backendUrl === undefined || !backendUrl.startsWith("file://")) return undefined;
  const withoutOptions = backendUrl.replace(/\?.*$/, "");
  const home = /^file:\/\/~(\/.*)?$/.exec(withoutOptions);
  // The account's home, as Pulumi's user.Current() reads it (not $HOME), or, for a uid that
  // /etc/passwd does not name (a container's), $HOME, as user.Current() falls back to.
  if (home !== null) return path.join(accountHome(), decodeURIComponent(home[1] ?? ""));
  return fileURLToPath(withoutOptions);
}

/**
 * A `file://` backend URL whose folder is relative (`file://state`, `file://./state`: Pulumi reads
 * what follows `file://` as a path and resolves it against its working folder, massageBlobPath in
 * pkg/backend/diy/backend.go) made absolute against `cwd`, where the command was typed. Strata
 * passes this one URL to every Pulumi run and reads the same folder itself, whichever folder the
 * engine runs in. Absolute and `~` URLs, and other backends, are returned as they are.
 */
export function absoluteFileBackendUrl(backendUrl: string, cwd: string): string {
  if (!backendUrl.startsWith("file://")) return backendUrl;
  const [location = "", ...query] = backendUrl.slice("file://".length).split("?");
  if (location.startsWith("/") || location.startsWith("~")) return backendUrl;
  return `file://${path.resolve(cwd, location)}${query.length > 0 ? `?${query.join("?")}` : ""}`;
}

/**
 * The names a stack's checkpoint has in a DIY backend, as Pulumi 3.276 writes and reads them
 * (pkg/backend/diy/store.go, stackPath): plain, gzip (PULUMI_DIY_BACKEND_GZIP) or zstd
 * (PULUMI_DIY_BACKEND_ZSTD). When several are there, Pulumi reads the one written last.
 */
export function checkpointNames(stack: string): string[] {
  return [".json", ".json.gz", ".json.zst"].map((suffix) => `${stack}${suffix}`);
}

/** The stack's checkpoint names a folder holds, in checkpointNames' order. */
export function checkpointsIn(dir: string, stack: string): string[] {
  return checkpointNames(stack).filter((name) => existsSync(path.join(dir, name)));
}

/**
 * The folder holding the stack's checkpoint, in either layout: `.pulumi/stacks/<project>` (project-scoped)
 * or `.pulumi/stacks` (before project-scoped stacks); undefined when neither holds one.
 */
export function checkpointDir(backendDir: string, project: string, stack: string): string | undefined {
  return [path.join(backendDir, ".pulumi", "stacks", project), path.join(backendDir, ".pulumi", "stacks")]
    .find((dir) => checkpointsIn(dir, stack).length > 0);
}

/**
 * The stack's checkpoint file, when a file backend has exactly one: `.pulumi/stacks/<project>/<stack>.json`
 * (or `.json.gz`, `.json.zst`), or, in the layout before project-scoped stacks (meta.yaml version 0
 * or none), `.pulumi/stacks/<stack>.json`. Undefined when it is not there, when several forms are
 * (which one is current is the CLI's to say), for a qualified stack name, or for a layout version
 * not known here.
 */
export function checkpointFile(backendUrl: string | undefined, project: string, stack: string): string | undefined {
  const backendDir = fileBackendDir(backendUrl);
  if (backendDir === undefined || stack.includes("/") || project.includes("/")) return undefined;
  const pulumiDir = path.join(backendDir, ".pulumi");
  let version: string | undefined;
  try {
    version = /^version:\s*(\d+)\s*$/m.exec(readFileSync(path.join(pulumiDir, "meta.yaml"), "utf8"))?.[1];
  } catch {
    version = undefined;
  }
  const stacksDir = version === "1" ? path.join(pulumiDir, "stacks", project) : version === undefined || version === "0" ? path.join(pulumiDir, "stacks") : undefined;
  if (stacksDir === undefined) return undefined;
  const found = checkpointsIn(stacksDir, stack);
  return found.length === 1 ? path.join(stacksDir, found[0] as string) : undefined;
}

/** zstd as Node.js 22.15 and later decompress it; an older Node has none (looked up when used, so it still starts), and the CLI is asked instead. */
function zstdDecompress(bytes: Buffer): Buffer {
  const decompress = (zlib as { zstdDecompressSync?: (input: Buffer) => Buffer }).zstdDecompressSync;
  if (decompress === undefined) throw new Error(`zstd needs Node.js 22.15 or later (this is ${process.version})`);
  return decompress(bytes);
}

/**
 * The deployment a checkpoint file holds, in the shape `pulumi stack export` prints under
 * `deployment` (the checkpoint's `latest`; a stack never deployed has none: an empty one).
 * Undefined when the file is not a version 3 checkpoint this can read: the CLI is asked then.
 */
export function readCheckpointDeployment(file: string): unknown {
  let checkpoint: unknown;
  try {
    const bytes = readFileSync(file);
    checkpoint = JSON.parse((file.endsWith(".gz") ? zlib.gunzipSync(bytes) : file.endsWith(".zst") ? zstdDecompress(bytes) : bytes).toString("utf8"));
  } catch {
    return undefined;
  }
  const versioned = checkpoint as { version?: unknown; checkpoint?: { latest?: unknown } } | null;
  if (versioned === null || typeof versioned !== "object" || versioned.version !== 3 || typeof versioned.checkpoint !== "object" || versioned.checkpoint === null) return undefined;
  const latest = versioned.checkpoint.latest;
  if (latest === undefined || latest === null) return { resources: [] };
  return typeof latest === "object" ? latest : undefined;
}
