/** Cleanup of images that benchmarks and end-to-end tests built in the local engine. */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { mapLimited } from "../src/core/concurrency.js";

const execFileAsync = promisify(execFile);

/** `format` of each image in the engine whose repository starts with `prefix`, each once. */
function listImages(prefix: string, format: string): string[] {
  return [...new Set(execFileSync("docker", ["image", "ls", "--all", "--format", `{{.Repository}} ${format}`], { encoding: "utf8" })
    .split("\n").filter((line) => line.startsWith(prefix)).map((line) => line.split(" ")[1] as string))];
}

/** The tagged references (`repository:tag`) the engine holds under `prefix`. */
export function taggedImages(prefix: string): string[] {
  return listImages(prefix, "{{.Repository}}:{{.Tag}}").filter((name) => !name.endsWith(":<none>"));
}

/**
 * Removes every image whose repository starts with `prefix`, tagged or left
 * dangling by a rebuild: untag first (an image may carry several channels'
 * tags), then remove what is left, children before parents.
 */
export function removeImages(prefix: string): void {
  const list = (format: string): string[] => listImages(prefix, format);
  const tagged = taggedImages(prefix);
  if (tagged.length > 0) spawnSync("docker", ["image", "rm", ...tagged], { stdio: "ignore" });
  for (let remaining = list("{{.ID}}"), before = Infinity; remaining.length > 0 && remaining.length < before; before = remaining.length, remaining = list("{{.ID}}")) {
    for (const id of remaining) spawnSync("docker", ["image", "rm", "--force", id], { stdio: "ignore" });
  }
}

/**
 * Pulls `refs` back into the engine from the registry they were pushed to, `concurrency` at a time.
 * A pull that fails stops the others from starting more, and the first failure is thrown once every
 * pull under way has ended (none goes on behind the bench's clean-up).
 */
export async function pullImages(refs: readonly string[], concurrency = 8): Promise<void> {
  const failures: unknown[] = [];
  // mapLimited's own promise rejects at the first failure while the pulls under way go on (no new
  // one starts); here each pull's failure is kept, so every pull under way ends before this throws.
  await mapLimited(refs, concurrency, async (ref) => {
    if (failures.length > 0) return;
    try {
      await execFileAsync("docker", ["pull", "--quiet", ref]);
    } catch (error) {
      failures.push(error);
    }
  });
  if (failures.length > 0) throw failures[0];
}

/** An empty engine, as a fresh CI runner has: the images under `prefix` and every build cache removed. */
export function emptyEngine(prefix: string): void {
  removeImages(prefix);
  execFileSync("docker", ["builder", "prune", "--all", "--force"], { stdio: "ignore" });
}

/** Which engine a benchmark ran on, for its results file: a figure is only read beside its engine. */
export interface EngineInfo {
  readonly host: string;
  readonly serverVersion: string;
  readonly storageDriver: string;
  readonly containerdStore: boolean;
  /** scripts/engines.sh's choice (pinned, debian), or "the caller's" when DOCKER_HOST was set by the caller. */
  readonly dockerd: string;
  /**
   * The emulators registered in this machine's binfmt_misc (qemu-aarch64, …), or "unknown" when it is
   * not mounted here or binfmt_misc is off: with one registered, BuildKit probes foreign architectures
   * at build time (issue #28 counted 84 probes a build on Docker 20.10), so an engine's CPU per layer
   * is read beside this. This machine's: a remote engine's (DOCKER_HOST tcp:// or ssh://) is not seen.
   */
  readonly emulators: readonly string[] | "unknown";
  /** Images (distinct ids) the engine held when this was read: what an engine holds may change what a build costs. */
  readonly images: number;
}

/** Where binfmt_misc is mounted (STRATA_BINFMT_DIR, as the program and scripts/services.sh read it). */
const binfmtDir = (env: NodeJS.ProcessEnv): string => env.STRATA_BINFMT_DIR ?? "/proc/sys/fs/binfmt_misc";

/** The enabled binfmt_misc entries but the interface's own files; "unknown" when it is not mounted or is off. */
function registeredEmulators(env: NodeJS.ProcessEnv): string[] | "unknown" {
  const dir = binfmtDir(env);
  const status = path.join(dir, "status");
  if (!existsSync(status) || readFileSync(status, "utf8").trim() !== "enabled") return "unknown";
  return readdirSync(dir).filter((entry) => entry !== "status" && entry !== "register")
    .filter((entry) => /^enabled$/m.test(readFileSync(path.join(dir, entry), "utf8"))).sort();
}

export function engineInfo(env: NodeJS.ProcessEnv = process.env): EngineInfo {
  const info = JSON.parse(execFileSync("docker", ["info", "--format", "{{json .}}"], { encoding: "utf8" })) as { ServerVersion?: string; Driver?: string; DriverStatus?: [string, string][] };
  const host = env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  return {
    host,
    serverVersion: info.ServerVersion ?? "unknown",
    storageDriver: info.Driver ?? "unknown",
    // The containerd image store reports its snapshotter as the driver and says so in DriverStatus.
    containerdStore: (info.DriverStatus ?? []).some(([key]) => key === "driver-type") || /^(overlayfs|native|stargz)$/.test(info.Driver ?? ""),
    dockerd: host === env.STRATA_ENGINE_CHOSEN ? (env.STRATA_DOCKERD ?? "pinned") : "the caller's",
    emulators: registeredEmulators(env),
    images: new Set(execFileSync("docker", ["image", "ls", "--all", "--quiet", "--no-trunc"], { encoding: "utf8" }).split("\n").filter((line) => line !== "")).size,
  };
}
