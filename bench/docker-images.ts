/** Cleanup of images that benchmarks and end-to-end tests built in the local engine. */
import { execFileSync, spawnSync } from "node:child_process";

/**
 * Removes every image whose repository starts with `prefix`, tagged or left
 * dangling by a rebuild: untag first (an image may carry several channels'
 * tags), then remove what is left, children before parents.
 */
export function removeImages(prefix: string): void {
  const list = (format: string): string[] => [...new Set(execFileSync("docker", ["image", "ls", "--all", "--format", `{{.Repository}} ${format}`], { encoding: "utf8" })
    .split("\n").filter((line) => line.startsWith(prefix)).map((line) => line.split(" ")[1] as string))];
  const tagged = list("{{.Repository}}:{{.Tag}}").filter((name) => !name.endsWith(":<none>"));
  if (tagged.length > 0) spawnSync("docker", ["image", "rm", ...tagged], { stdio: "ignore" });
  for (let remaining = list("{{.ID}}"), before = Infinity; remaining.length > 0 && remaining.length < before; before = remaining.length, remaining = list("{{.ID}}")) {
    for (const id of remaining) spawnSync("docker", ["image", "rm", "--force", id], { stdio: "ignore" });
  }
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
  };
}
