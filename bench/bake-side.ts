/**
 * The peer a platform team would pick today: `docker buildx bake` on a current BuildKit
 * (scripts/bench-tools.sh builds and starts it). One bake file for the whole tree, generated from
 * the catalog's build order: a target per layer, its parent as a named context
 * (`contexts = { parent = "target:<parent>" }` with `BASE_IMAGE=parent`, so `FROM ${BASE_IMAGE}`
 * resolves to it), the same build argument Strata's peer passes, the same tags, plain manifests
 * (BUILDX_NO_DEFAULT_ATTESTATIONS=1), pushed to the registry. One solve for every target.
 */
import { execFileSync, type SpawnSyncReturns, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Measurement, seconds } from "./strata-side.js";
import { clockTicksPerSecond, type CpuReport, sweep } from "./cpu-sampler.js";
import { sampledSpawnSync } from "./cpu-measure.js";

const BUILDX_VERSION = "v0.38.2";

/** buildx and the environment that selects the bench's builder (scripts/bench-tools.sh start). */
function buildx(): { binary: string; env: NodeJS.ProcessEnv } {
  const home = process.env.STRATA_HOME ?? path.join(process.env.HOME ?? "/root", ".cache/strata");
  const state = process.env.STRATA_STATE as string;
  return {
    binary: path.join(home, "bench-tools", `buildx-${BUILDX_VERSION}`),
    env: { ...process.env, BUILDX_CONFIG: path.join(state, "bench-buildkit/buildx"), BUILDX_BUILDER: "strata-bench", BUILDX_NO_DEFAULT_ATTESTATIONS: "1", DOCKER_HOST: `unix://${path.join(state, "bench-buildkit/no-docker.sock")}` },
  };
}

/** buildkitd's pid (scripts/bench-tools.sh start writes it; setsid makes it its process group's leader). */
function buildkitdPid(): number {
  const pidfile = path.join(process.env.STRATA_STATE as string, "bench-buildkit/buildkitd.pid");
  const pid = Number(readFileSync(pidfile, "utf8").trim());
  // A pid that is no number or names no process would read as an idle buildkitd: say so instead.
  if (!Number.isInteger(pid) || pid <= 1 || !existsSync(`/proc/${pid}`)) throw new Error(`${pidfile} names no running buildkitd (${pid}): scripts/bench-tools.sh start`);
  return pid;
}

/** CPU seconds of every process in buildkitd's group, reaped children included (utime+stime+cutime+cstime). */
function groupCpuSeconds(group: number): number {
  let ticks = 0;
  for (const stat of sweep().processes.values()) if (stat.pgrp === group) ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
  return ticks / clockTicksPerSecond();
}

interface OrderLine {
  readonly layer: string;
  readonly parent: string | undefined;
  readonly image: string;
}

/** The bake file for a catalog's build order (`layer parent image` per line). Pure. */
export function bakeFile(catalog: string, order: readonly OrderLine[], prefix: string, tag: string): Record<string, unknown> {
  const targets: Record<string, unknown> = {};
  for (const line of order) {
    targets[line.layer] = {
      context: path.join(catalog, line.layer),
      dockerfile: "Dockerfile",
      args: { STRATA_VERSION: tag.replace(/-\d+$/, ""), ...(line.parent === undefined ? {} : { BASE_IMAGE: "parent" }) },
      ...(line.parent === undefined ? {} : { contexts: { parent: `target:${line.parent}` } }),
      tags: [`${prefix}/${line.image}:${tag}`],
      output: ["type=registry,registry.insecure=true"],
    };
  }
  return { group: { default: { targets: order.map((line) => line.layer) } }, target: targets };
}

/**
 * From `--progress=plain`: the targets that ran a step instead of taking it from the cache. A
 * vertex is named `#N [target k/m] STEP` once, then ends `#N CACHED` or `#N DONE …`. Pure.
 */
export function targetsBuilt(progress: string): number {
  const targetOf = new Map<string, string>();
  const built = new Set<string>();
  for (const line of progress.split("\n")) {
    const named = /^#(\d+) \[([A-Za-z0-9_-]+) \d+\/\d+\] (RUN|COPY|ADD) /.exec(line);
    if (named !== null) targetOf.set(named[1] as string, named[2] as string);
    const done = /^#(\d+) DONE /.exec(line);
    const target = done === null ? undefined : targetOf.get(done[1] as string);
    if (target !== undefined) built.add(target);
  }
  return built.size;
}

export class BakeSide {
  readonly root = mkdtempSync(path.join(tmpdir(), "strata-bench-bake-"));
  readonly catalog = path.join(this.root, "catalog");

  constructor(readonly group: string, readonly registry: string) {}

  private order(): OrderLine[] {
    return readFileSync(path.join(this.root, "build-order.txt"), "utf8").trim().split("\n").map((line) => {
      const [layer, parent, image] = line.split(" ") as [string, string, string];
      return { layer, parent: parent === "-" ? undefined : parent, image };
    });
  }

  /**
   * Builds and pushes the whole tree under `tag` (a CI run: the release tag with the change's
   * suffix). `sampleCpu`: every process's CPU sampled while bake runs (buildkitd's among them).
   */
  up(tag = "1.0-p0", sampleCpu = false): Measurement {
    const file = path.join(this.root, "docker-bake.json");
    const order = this.order();
    // Contexts relative to the folder bake runs in: bake asks for file-system entitlements for any outside it.
    writeFileSync(file, JSON.stringify(bakeFile(path.relative(this.root, this.catalog), order, `${this.registry}/${this.group}`, tag), null, 1));
    const { binary, env } = buildx();
    let progress = "";
    let cpu: CpuReport | undefined;
    let elapsed = seconds(() => {
      // buildx writes its progress to standard error.
      const args = ["bake", "-f", file, "--progress=plain"];
      const options = { cwd: this.root, env, encoding: "utf8", maxBuffer: 256 << 20 } as const;
      let result: SpawnSyncReturns<string>;
      if (sampleCpu) ({ result, cpu } = sampledSpawnSync(binary, args, options));
      else result = spawnSync(binary, args, options);
      progress = result.stderr;
      if (result.status !== 0) throw new Error(`buildx bake failed (exit ${result.status}):\n${progress.split("\n").slice(-30).join("\n")}`);
    });
    if (cpu !== undefined) elapsed = cpu.wallSeconds;
    return { seconds: elapsed, built: targetsBuilt(progress), ...(cpu === undefined ? {} : { cpu }) };
  }

  /**
   * bake's BuildKit may not work during the other sides' turns: it did (issue #28's bench of
   * 12-03: 19.6 CPU-s in Strata's cold turn, 8.6-9.8 in its no-ops, work left over from bake's own
   * turn), which charged bake's work to them. After its turn, buildkitd is left to finish (until
   * its group used under 0.02 CPU-s in each of three half-seconds in a row, at most 5 minutes, outside bake's measured
   * time: after an N=200 no-op it worked for over a minute, 111 CPU-s, and what was left at a
   * one-minute limit went into bake's next turn), then stopped (SIGSTOP to its process group) until
   * bake's next turn. Returns the CPU seconds it spent finishing, which the caller reports.
   */
  pause(): number {
    const group = buildkitdPid();
    const start = groupCpuSeconds(group);
    const deadline = Date.now() + 300_000;
    // Quiet for three half-seconds in a row: one quiet interval can be a wait on the disk or the registry.
    for (let last = start, quiet = 0; quiet < 3 && Date.now() < deadline;) {
      execFileSync("sleep", ["0.5"]);
      const now = groupCpuSeconds(group);
      quiet = now - last < 0.02 ? quiet + 1 : 0;
      last = now;
    }
    const finishing = groupCpuSeconds(group) - start;
    process.kill(-group, "SIGSTOP");
    return finishing;
  }

  /** buildkitd working again, for bake's turn (and before it is stopped at the end of the bench). */
  resume(): void {
    process.kill(-buildkitdPid(), "SIGCONT");
  }

  /** An empty cache, as a fresh CI runner has (`buildx prune -af`). */
  emptyCache(): void {
    const { binary, env } = buildx();
    execFileSync(binary, ["prune", "-af"], { env, stdio: "ignore" });
  }
}
