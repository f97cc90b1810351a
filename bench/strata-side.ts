/**
 * One Strata project for the benchmarks: its own catalog copy, Pulumi project,
 * backend and image group, driven through `strata up` as a user runs it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse, stringify } from "yaml";
import { BUILD_NETWORKS, type BuildNetwork, type Builder } from "../src/core/config.js";
import { projectRoot } from "./stats.js";
import { type CpuReport } from "./cpu-sampler.js";
import { sampledSpawnSync } from "./cpu-measure.js";

const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;

export interface Measurement {
  readonly seconds: number;
  readonly built: number;
  /**
   * Tags the run wrote (new, or moved to another digest), measured in the registry before and after
   * it (pushes.ts) by the caller; absent when not measured. Never inferred from "built".
   */
  readonly pushed?: number;
  /** CI runs: layers copied inside the registry instead of built. */
  readonly copied?: number;
  readonly peakMiB?: number;
  /** CPU by component while the run ran, when it was sampled (cpu-sampler.ts). */
  readonly cpu?: CpuReport;
}

export function seconds(task: () => void): number {
  const started = process.hrtime.bigint();
  task();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** A stack signing key for a side: cosign's encrypted PEM and its passphrase (a test key: bench/signing-key.ts). */
export interface BenchSigningKey {
  readonly privateKeyPem: string;
  readonly passphrase: string;
}

/** `--build-network` as the benches take it: one or more of BUILD_NETWORKS, comma-separated. */
export function parseBuildNetworks(text: string): BuildNetwork[] {
  const networks = text.split(",");
  for (const network of networks) if (!(BUILD_NETWORKS as readonly string[]).includes(network)) throw new Error(`--build-network ${text}: use one or more of ${BUILD_NETWORKS.join(", ")}`);
  return networks as BuildNetwork[];
}

/** The stack config a side builds with on `network`: none for the engine's default. */
export function buildNetworkConfig(network: BuildNetwork): Record<string, string> {
  return network === "default" ? {} : { "strata:buildNetwork": network };
}

/** A side's name in results: the builder, `+<network>` for another network than the default, `+signed` when it signs. */
export function sideLabel(builder: Builder, network: BuildNetwork, signed: boolean): string {
  return `${builder}${network === "default" ? "" : `+${network}`}${signed ? "+signed" : ""}`;
}

/** One Strata project with its own catalog, backend and group. */
export class StrataSide {
  readonly root = mkdtempSync(path.join(tmpdir(), "strata-bench-"));
  readonly catalog = path.join(this.root, "catalog");
  readonly project = path.join(this.root, "project");
  readonly env: NodeJS.ProcessEnv;

  /** What the side is called in results (sideLabel). */
  readonly label: string;
  readonly signed: boolean;

  /**
   * `extraConfig`: more stack config for the channel's stacks (`strata:platforms`, say). `signing`:
   * the channel stack signs and attests every image with this key (stack secrets, as a user sets them).
   */
  constructor(readonly group: string, parallel: number, readonly builder: Builder, extraConfig: Record<string, unknown> = {}, signing?: BenchSigningKey) {
    this.signed = signing !== undefined;
    this.label = sideLabel(builder, (extraConfig["strata:buildNetwork"] as BuildNetwork | undefined) ?? "default", this.signed);
    mkdirSync(this.project, { recursive: true });
    mkdirSync(path.join(this.root, "state"));
    const project = parse(readFileSync(path.join(projectRoot, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
    project.main = path.relative(this.project, path.join(projectRoot, "dist/index.js"));
    project.plugins = { providers: [{ name: "strata", path: path.join(projectRoot, "provider") }] };
    writeFileSync(path.join(this.project, "Pulumi.yaml"), stringify(project));
    const [osRelease] = group.split("-mos9.0-");
    const config = { "strata:registry": registry, "strata:osRelease": osRelease, "strata:channel": "dev", "strata:builder": builder, ...extraConfig };
    writeFileSync(path.join(this.project, "Pulumi.bench.yaml"), stringify({ config }));
    // The same channel, for CI runs that rebuild every layer (the behaviour before copies).
    writeFileSync(path.join(this.project, "Pulumi.rebuildall.yaml"), stringify({ config: { ...config, "strata:copyUnchanged": false } }));
    this.env = { ...process.env, PULUMI_BACKEND_URL: `file://${this.root}/state`, PULUMI_CONFIG_PASSPHRASE: "bench", STRATA_MEMORY_REPORT: path.join(this.root, "memory.json") };
    this.parallel = parallel;
    if (signing !== undefined) {
      // As the README tells a user: the stack first, then the key and its passphrase as secrets (read from stdin, never argv).
      const pulumi = (args: readonly string[], input?: string): void => {
        execFileSync("pulumi", [...args, "--stack", "bench", "--non-interactive"], { cwd: this.project, env: this.env, stdio: [input === undefined ? "ignore" : "pipe", "ignore", "pipe"], ...(input === undefined ? {} : { input }) });
      };
      pulumi(["stack", "init"]);
      pulumi(["config", "set", "--secret", "strata:signingKey"], signing.privateKeyPem);
      pulumi(["config", "set", "--secret", "strata:signingKeyPassphrase"], signing.passphrase);
      // A change's run signs with the change key alone (README, Which key goes where): the CI
      // scenarios sign too. The bench's one test-only fixture key serves as both; a real channel's are two pairs.
      pulumi(["config", "set", "--secret", "strata:changeSigningKey"], signing.privateKeyPem);
      pulumi(["config", "set", "--secret", "strata:changeSigningKeyPassphrase"], signing.passphrase);
    }
  }

  parallel: number;

  /** The last `up`'s summary (per-layer results and timings). */
  get summaryFile(): string {
    return path.join(this.root, "summary.json");
  }

  /**
   * `strata up` on the channel stack; with `change`, a CI run of that Gerrit change (its own stack,
   * made by the CLI). `freshRunner`: as on a machine that never ran Strata, with an empty registry
   * blob cache and Node compile cache (the caller empties the engine).
   */
  up(ci?: { change: number; rebuildAll: boolean; freshRunner?: boolean }, sampleCpu = false): Measurement {
    const env: NodeJS.ProcessEnv = ci === undefined ? {} : { GERRIT_CHANGE_NUMBER: String(ci.change), GERRIT_PATCHSET_NUMBER: "1" };
    if (ci?.freshRunner === true) {
      env.STRATA_BLOB_CACHE = mkdtempSync(path.join(this.root, "blob-cache-"));
      env.NODE_COMPILE_CACHE = mkdtempSync(path.join(this.root, "compile-cache-"));
    }
    return this.upWith(env, ci?.rebuildAll === true ? "rebuildall" : "bench", sampleCpu);
  }

  /**
   * `strata up` with more environment (a CI change, another backend). `sampleCpu`: every process's
   * CPU sampled while it runs, and the time the sampler measured around the command alone.
   */
  upWith(extraEnv: NodeJS.ProcessEnv, stack = "bench", sampleCpu = false): Measurement {
    if (this.signed) this.commitCatalog();
    const summary = this.summaryFile;
    const env = { ...this.env, ...extraEnv };
    const ci = extraEnv.GERRIT_CHANGE_NUMBER;
    let result: ReturnType<typeof spawnSync> | undefined;
    let cpu: CpuReport | undefined;
    const args = [path.join(projectRoot, "bin/strata.js"), "up", "--stack", stack, "--project", this.project, "--catalog", this.catalog, "--summary-json", summary, "--parallel", String(this.parallel)];
    // The engine's progress goes to a pipe, not the terminal (the table is the output); shown on failure.
    const options = { env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", maxBuffer: 64 << 20 } as const;
    let elapsed = seconds(() => {
      if (sampleCpu) ({ result, cpu } = sampledSpawnSync("node", args, { ...options, stdio: [...options.stdio] }));
      else result = spawnSync("node", args, { ...options, stdio: [...options.stdio] });
    });
    if (cpu !== undefined) elapsed = cpu.wallSeconds;
    if (result?.status !== 0) throw new Error(`strata up failed in ${this.root}:\n${String(result?.stderr ?? "")}`);
    const layers = (JSON.parse(readFileSync(summary, "utf8")) as { layers: { result: string }[] }).layers;
    const built = layers.filter((layer) => layer.result === "built").length;
    const copied = layers.filter((layer) => layer.result === "copied").length;
    const memory = existsSync(this.env.STRATA_MEMORY_REPORT as string) ? (JSON.parse(readFileSync(this.env.STRATA_MEMORY_REPORT as string, "utf8")) as { maxRssKiB: number }).maxRssKiB / 1024 : undefined;
    return { seconds: elapsed, built, ...(ci === undefined ? {} : { copied }), ...(memory === undefined ? {} : { peakMiB: memory }), ...(cpu === undefined ? {} : { cpu }) };
  }

  /**
   * A signing side's provenance names the catalog's commit: its catalog is a git checkout, committed
   * before each run (outside the time measured), so the tree is clean as in a CI job.
   */
  private commitCatalog(): void {
    const git = (...args: string[]): void => {
      execFileSync("git", ["-C", this.catalog, "-c", "user.email=bench@strata.invalid", "-c", "user.name=bench", ...args], { stdio: "ignore" });
    };
    if (!existsSync(path.join(this.catalog, ".git"))) git("init", "-q");
    git("add", "-A");
    git("commit", "-q", "--allow-empty", "-m", "bench");
  }

  plan(): number {
    return seconds(() => {
      execFileSync("node", [path.join(projectRoot, "bin/strata.js"), "plan", "--stack", "bench", "--project", this.project, "--catalog", this.catalog, "--json"], { env: this.env, stdio: "ignore" });
    });
  }
}

