/**
 * End-to-end harness: a throwaway copy of the fixture catalog, its own Pulumi
 * project folder and file backend, and stacks driven against the real engine,
 * the real Docker engine and the local registry: through the Automation API
 * (stack.up, preview), the strata CLI in this process (runStrata), and the
 * pulumi and strata commands as processes (interruptUp, startGroupUp).
 * Nothing here is mocked.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";
import { parse, stringify } from "yaml";
import { removeImages } from "../../bench/docker-images.js";
import { eventCollector, type LayerEvent } from "../../src/engine/events.js";
import { runCli } from "../../src/cli/commands.js";
import { type SummaryRow } from "../../src/cli/summary.js";
import { RegistryClient } from "../../src/registry/client.js";
import { groupMembers, startInGroup } from "../helpers/process-group.js";
import { within } from "../helpers/within.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const registryAddress = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
export const registry = new RegistryClient({ registry: registryAddress });

/** What the engine did or would do to each layer image, by layer name. */
export type Operations = Map<string, string>;

export interface E2eStack {
  readonly name: string;
  readonly stack: Stack;
  /** `<osRelease>-<productVersion>-<channel>`, unique to this stack so tests can share one registry. */
  readonly group: string;
  up(): Promise<{ operations: Operations; summary: Record<string, number>; log: string }>;
  preview(): Promise<{ operations: Operations; summary: Record<string, number> }>;
  outputs(): Promise<Record<string, LayerOutputValue>>;
  destroy(): Promise<void>;
}

export interface LayerOutputValue {
  readonly layer: string;
  readonly image: string;
  readonly tag: string;
  readonly ref: string;
  readonly digestRef: string;
  readonly fingerprint: string;
  readonly parent: string | null;
  readonly origin: "built" | "adopted" | "promoted";
  readonly promotedFrom?: string;
}

/** The engine's operation per layer image, from the same event reduction `strata up` uses. */
function operationsOf(events: ReadonlyMap<string, LayerEvent>): Operations {
  return new Map([...events].map(([layer, event]) => [layer, event.op] as const));
}

/** A project folder whose Pulumi.yaml is the repo's, pointed at the compiled program and provider. */
function writeProject(projectDir: string): void {
  const project = parse(readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8")) as Record<string, unknown> & { plugins: { providers: { name: string; path: string }[] } };
  project.main = path.relative(projectDir, path.join(repoRoot, "dist/index.js"));
  project.plugins = { providers: project.plugins.providers.map((provider) => ({ ...provider, path: path.join(repoRoot, "provider") })) };
  writeFileSync(path.join(projectDir, "Pulumi.yaml"), stringify(project));
}

export interface StackOptions {
  /** Config values stored as secrets (`pulumi config set --secret`). */
  readonly secrets?: Record<string, string>;
  /** Extra environment for this stack's engine, program and provider. */
  readonly env?: Record<string, string>;
}

export interface E2eWorld {
  readonly root: string;
  readonly catalogDir: string;
  readonly projectDir: string;
  /** `e2e-<name>-<random>`: the osRelease of every stack in this world, so tests can share one registry. */
  readonly osRelease: string;
  /** Backend and passphrase of this world, for the strata CLI. */
  readonly env: Readonly<Record<string, string>>;
  /** A stack in this world's project and backend (stacks can reference each other). */
  stack(name: string, config?: Record<string, string>, options?: StackOptions): Promise<E2eStack>;
  /** Removes every stack, the backend and the temp folder, and the local images. */
  cleanup(): Promise<void>;
}

/** A temp folder with a copy of the fixture catalog, a project and a file backend. */
export interface WorldOptions {
  /** Overrides of the world's environment: another backend (PULUMI_BACKEND_URL, PGPASSFILE), DOCKER_HOST. */
  readonly env?: Record<string, string>;
  /** A catalog folder copied in place of the fixture's busybox tree, its base rootfs with it (the sample's, `layers/`). */
  readonly catalog?: string;
}

export function createWorld(name: string, options: WorldOptions = {}): E2eWorld {
  const root = mkdtempSync(path.join(tmpdir(), `strata-e2e-${name}-`));
  const catalogDir = path.join(root, "catalog");
  const projectDir = path.join(root, "project");
  const stateDir = path.join(root, "state");
  mkdirSync(projectDir);
  mkdirSync(stateDir);
  cpSync(options.catalog ?? path.join(repoRoot, "test/fixtures/catalog"), catalogDir, { recursive: true });
  if (options.catalog === undefined) execFileSync(path.join(repoRoot, "scripts/make-rootfs.sh"), ["busybox", path.join(catalogDir, "base/rootfs.tar")], { stdio: "inherit" });
  writeProject(projectDir);
  const osRelease = `e2e-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const stacks: E2eStack[] = [];
  const envVars = { PULUMI_BACKEND_URL: `file://${stateDir}`, PULUMI_CONFIG_PASSPHRASE: "e2e", STRATA_CATALOG: catalogDir, ...options.env };
  return {
    root,
    catalogDir,
    projectDir,
    osRelease,
    env: envVars,
    async stack(stackName, config = {}, options = {}) {
      const values: Record<string, string> = { registry: registryAddress, osRelease, productVersion: "mos9.0", channel: "dev", ...config };
      const group = `${values.osRelease}-${values.productVersion}-${values.channel}`;
      const stack = await LocalWorkspace.createOrSelectStack({ stackName, workDir: projectDir }, { envVars: { ...envVars, ...options.env } });
      await stack.setAllConfig({
        ...Object.fromEntries(Object.entries(values).map(([key, value]) => [`strata:${key}`, { value }])),
        ...Object.fromEntries(Object.entries(options.secrets ?? {}).map(([key, value]) => [`strata:${key}`, { value, secret: true }])),
      });
      const e2e = wrapStack(stackName, stack, group);
      stacks.push(e2e);
      return e2e;
    },
    async cleanup() {
      try {
        for (const e2e of stacks) await e2e.stack.workspace.removeStack(e2e.name, { force: true });
      } finally {
        rmSync(root, { recursive: true, force: true });
        removeImages(`${registryAddress}/${osRelease}-`);
      }
    },
  };
}

function wrapStack(name: string, stack: Stack, group: string): E2eStack {
  const summaryOf = (changes: Record<string, number> | undefined): Record<string, number> => ({ ...(changes ?? {}) });
  return {
    name,
    stack,
    group,
    async up() {
      const { events, onEvent } = eventCollector();
      const result = await stack.up({ onEvent, parallel: 4 });
      return { operations: operationsOf(events), summary: summaryOf(result.summary.resourceChanges), log: `${result.stdout}\n${result.stderr}` };
    },
    async preview() {
      const { events, onEvent } = eventCollector();
      const result = await stack.preview({ onEvent });
      return { operations: operationsOf(events), summary: summaryOf(result.changeSummary) };
    },
    async outputs() {
      const outputs = await stack.outputs();
      return (outputs.layers?.value ?? {}) as Record<string, LayerOutputValue>;
    },
    async destroy() {
      await stack.destroy();
    },
  };
}

/**
 * Makes a world's catalog multi-platform (linux/amd64 + linux/arm64) the way a user's is: the base
 * layer takes its platform's busybox rootfs through TARGETARCH (README *Multi-platform images*).
 * Registers qemu-user-static for the arm64 build steps first (root).
 */
export function makeMultiPlatform(world: E2eWorld): void {
  execFileSync(path.join(repoRoot, "scripts/services.sh"), ["emulation", "linux/arm64"], { stdio: "inherit" });
  const base = path.join(world.catalogDir, "base");
  renameSync(path.join(base, "rootfs.tar"), path.join(base, "rootfs-amd64.tar"));
  execFileSync(path.join(repoRoot, "scripts/make-rootfs.sh"), ["busybox", path.join(base, "rootfs-arm64.tar"), "linux/arm64"], { stdio: "inherit" });
  writeFileSync(path.join(base, "Dockerfile"), readFileSync(path.join(base, "Dockerfile"), "utf8").replace("ADD rootfs.tar /", "ARG TARGETARCH\nADD rootfs-${TARGETARCH}.tar /"));
}

/** Repositories of one group, with their tags, straight from the registry API. */
export async function registryContents(group: string, client: RegistryClient = registry): Promise<Record<string, string[]>> {
  const contents: Record<string, string[]> = {};
  for (const repository of await client.repositories()) {
    if (repository.startsWith(`${group}/`)) contents[repository.slice(group.length + 1)] = await client.tags(repository);
  }
  return contents;
}

/** git in a world's catalog, as the suite's author (a commit needs a name); its output, trimmed. */
export function catalogGit(world: E2eWorld, ...args: string[]): string {
  return execFileSync("git", ["-C", world.catalogDir, "-c", "user.email=e2e@strata.invalid", "-c", "user.name=e2e", ...args], { encoding: "utf8" }).trim();
}

/** Makes a world's catalog a checkout of one commit: a signing run's provenance names its commit. */
export function commitCatalog(world: E2eWorld): void {
  catalogGit(world, "init", "-q");
  catalogGit(world, "add", "-A");
  catalogGit(world, "commit", "-q", "-m", "catalog");
}

/** Layers whose operation is not `same`. */
export function changed(operations: Operations): string[] {
  return [...operations].filter(([, op]) => op !== "same").map(([name]) => name).sort();
}

/**
 * Another runner of a world: its own project folder (a clone: the same Pulumi.yaml and stack files,
 * copied now), the same backend and catalog, and its own environment on top (its DOCKER_HOST).
 */
export function secondRunner(world: E2eWorld, name: string, env: Record<string, string> = {}): E2eWorld {
  const projectDir = path.join(world.root, `runner-${name}`);
  cpSync(world.projectDir, projectDir, { recursive: true });
  return { ...world, projectDir, env: { ...world.env, ...env } };
}

/** Runs the strata CLI against a world's project, backend and catalog, as scripts/strata would. */
export async function runStrata(world: E2eWorld, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ code: number; out: string }> {
  let out = "";
  const code = await runCli([...args, "--project", world.projectDir], { out: (text) => (out += text), err: (text) => (out += text), env: { ...world.env, ...env }, cwd: world.projectDir });
  return { code, out };
}

/** What `strata up --summary-json` writes. */
export interface UpSummary {
  readonly stack: string;
  readonly channelStack: string;
  readonly ok: boolean;
  readonly layers: readonly SummaryRow[];
}

/**
 * `strata up` on a world's stack with its catalog and a summary file named `name`: the exit code
 * and output, the summary, and each layer's result by name. Callers assert on the code.
 */
export async function upWithSummary(world: E2eWorld, stack: string, name: string, env: Readonly<Record<string, string>> = {}): Promise<{ code: number; out: string; summary: UpSummary; results: Record<string, string> }> {
  const summaryFile = path.join(world.root, `${name}.json`);
  const { code, out } = await runStrata(world, ["up", "--stack", stack, "--catalog", world.catalogDir, "--summary-json", summaryFile], env);
  if (!existsSync(summaryFile)) throw new Error(`strata up --stack ${stack} wrote no summary (exit ${code}):\n${out}`);
  const summary = JSON.parse(readFileSync(summaryFile, "utf8")) as UpSummary;
  return { code, out, summary, results: Object.fromEntries(summary.layers.map((layer) => [layer.layer, layer.result])) };
}

/** A `strata up` running in a process group of its own (what a CI job is), to watch and kill whole. */
export interface UpInGroup {
  /** The group leader's pid (= the process group id). */
  readonly pid: number;
  output(): string;
  /** Signals every process of the group, the leader's children (pulumi, its plugins) included. */
  killGroup(signal: NodeJS.Signals): void;
  /**
   * Resolves with the exit code (or the signal) once the leader is gone and its output read
   * (helpers/process-group.ts); rejects when the spawn itself failed.
   */
  readonly exited: Promise<number | NodeJS.Signals>;
}

/**
 * Starts `strata up` on a world's stack in a new process group. `hostname`: run it in a UTS
 * namespace of its own under that host name (unshare -u), as if on another machine sharing the backend.
 * `pidNamespace`: in a PID namespace of its own (unshare -p -f --mount-proc), host name unchanged:
 * what a second CI container with the same fixed host name is to this one.
 */
export function startGroupUp(world: E2eWorld, stack: string, options: { hostname?: string; pidNamespace?: boolean; env?: Record<string, string> } = {}): UpInGroup {
  const strata = [process.execPath, path.join(repoRoot, "bin/strata.js"), "up", "--stack", stack, "--project", world.projectDir, "--catalog", world.catalogDir];
  const [command, ...args] = options.pidNamespace === true ? ["unshare", "-p", "-f", "--mount-proc", ...strata]
    : options.hostname === undefined ? strata
    : ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', options.hostname, ...strata];
  // The engine's state writes as strata up chooses them (cli-run.ts checkpointEnv), unless a test says otherwise.
  const { PULUMI_SKIP_CHECKPOINTS: _chosenByCaller, ...inherited } = process.env;
  const run = startInGroup(command as string, args, { cwd: world.projectDir, env: { ...inherited, ...world.env, ...options.env } });
  // node and unshare are there: a spawn that fails is this machine's fault, not an answer of strata's.
  const exited = run.exited.then((status) => {
    if (status instanceof Error) throw status;
    return status;
  });
  // Awaited later, if at all (a test may still be waiting for output): not an unhandled rejection meanwhile.
  exited.catch(() => undefined);
  const up: UpInGroup = { pid: run.pid as number, output: run.output, killGroup: (signal) => run.killGroup(signal), exited };
  // A run under another host name or in another PID namespace cannot be proved gone from here
  // (engine/recover.ts lockVerdict): --force at once, since it was killed and waited for. Here it
  // can, so a recover that fails is said; then --force all the same, so the next test starts clean.
  const elsewhere = options.hostname !== undefined || options.pidNamespace === true;
  trackRun(run.ended, up, async () => {
    if (!elsewhere) {
      const recovered = await runStrata(world, ["recover", "--stack", stack]);
      if (recovered.code === 0) return undefined;
      const forced = await runStrata(world, ["recover", "--stack", stack, "--force"]);
      return `strata recover --stack ${stack} failed (exit ${recovered.code}): ${recovered.out}; with --force: ${forced.code === 0 ? "recovered" : `failed too (exit ${forced.code}): ${forced.out}`}`;
    }
    const forced = await runStrata(world, ["recover", "--stack", stack, "--force"]);
    return forced.code === 0 ? undefined : `strata recover --stack ${stack} --force failed (exit ${forced.code}): ${forced.out}`;
  });
  return up;
}

/** A run in a process group of its own that a test started: what endRunningUps needs of it. */
interface TrackedRun {
  readonly pid: number;
  killGroup(signal: NodeJS.Signals): void;
  readonly exited: Promise<unknown>;
  /** Once it is gone: what its kill left (a stack's lock, plugins in process groups of their own) cleared; why not, when it could not be. */
  readonly recover?: () => Promise<string | undefined>;
}

/**
 * The runs started since the last endRunningUps (one test's), each with whether its leader has
 * ended. Cleared after each test, so a group id is not held long enough for the system to reuse it.
 */
const startedRuns = new Map<TrackedRun, { leaderEnded: boolean }>();

/** Tracks `run` (startGroupUp's runs are) for endRunningUps after the test; `ended`: its leader's end. */
export function trackRun(ended: Promise<unknown>, run: Omit<TrackedRun, "recover">, recover?: TrackedRun["recover"]): void {
  const tracked: TrackedRun = { ...run, ...(recover === undefined ? {} : { recover }) };
  const state = { leaderEnded: false };
  startedRuns.set(tracked, state);
  const mark = (): void => {
    state.leaderEnded = true;
  };
  void ended.then(mark, mark);
}

/** How long endRunningUps gives the processes a run left after its leader ended, to end on their own. */
const LEFT_GRACE_MS = 5_000;
/** How long endRunningUps waits, in all, for the groups it killed to be gone. */
const KILLED_WAIT_MS = 30_000;

/** Whether no live process of the group is left, waiting for it until `deadline` (Date.now() ms). */
async function groupGone(pid: number, deadline: number): Promise<boolean> {
  const gone = (): boolean => groupMembers(pid).length === 0;
  // waitFor does not look again at its limit: once more here, so a group that ends on the last poll counts.
  return (await waitFor(gone, Math.max(0, deadline - Date.now()))) || gone();
}

/**
 * After each test that starts runs with startGroupUp. A run is left when its leader is still there
 * (a test that failed before it awaited the run, one stopped with SIGSTOP), or when its leader ended
 * but processes of its group are still alive 5 s later (strata killed alone while its engine ran
 * on). Left runs are killed with their groups and waited for until no process of them is alive
 * (30 s in all: one SIGKILL cannot end is named, not waited out); then each run's recover
 * (`strata recover` on its stack) releases the lock it held and ends its plugins, which run in
 * process groups of their own (engine/leftover-plugins.ts), so the next test meets neither. The
 * test fails for having left them, since every test awaits the end of the runs it starts.
 */
export async function endRunningUps(): Promise<void> {
  const started = [...startedRuns];
  startedRuns.clear();
  const left: TrackedRun[] = [];
  for (const [run, { leaderEnded }] of started) {
    // Its leader reaped, a live process whose pid is the group's id leads a new group that took the
    // number: not this run's.
    if (!leaderEnded || (!(await groupGone(run.pid, Date.now() + LEFT_GRACE_MS)) && !groupMembers(run.pid).includes(run.pid))) left.push(run);
  }
  if (left.length === 0) return;
  for (const run of left) run.killGroup("SIGKILL");
  const deadline = Date.now() + KILLED_WAIT_MS;
  const problems: string[] = [];
  for (const run of left) {
    const exited = await within(run.exited.then(() => true, () => true), Math.max(0, deadline - Date.now()), false);
    // Its leader gone is not enough: the other processes of its group (the engine) may take a moment to die.
    if (!exited || !(await groupGone(run.pid, deadline))) {
      problems.push(`process group ${run.pid} was still there ${KILLED_WAIT_MS / 1000} s after SIGKILL, so nothing it left was recovered`);
      continue;
    }
    const unrecovered = await run.recover?.();
    if (unrecovered !== undefined) problems.push(`process group ${run.pid}: ${unrecovered}`);
  }
  throw new Error(`the test left ${left.length} strata up running (process group ${left.map((run) => run.pid).join(", ")}): killed with its group${problems.length === 0 ? " and recovered" : `; ${problems.join("; ")}`}`);
}

/** Waits (up to `ms`) until `test` holds, checking every 50 ms; false if it never did. */
export async function waitFor(test: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (test()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return test();
}

/**
 * Starts `pulumi up` on a world's stack and kills it with `signal` once `killWhen`
 * says so, given the engine's output so far and the milliseconds since the start
 * (checked on every output chunk and every 20 ms). Resolves with the output when
 * the process is gone; `killed` is false when the run ended before the kill; `pid`
 * is the killed process's (the one the stack's lock names). A bare `pulumi up` writes no owner
 * record (only `strata up` does), so `strata recover` needs --force after it.
 */
export async function interruptUp(world: E2eWorld, stack: string, killWhen: (output: string, elapsedMs: number) => boolean, signal: NodeJS.Signals = "SIGKILL"): Promise<{ output: string; killed: boolean; pid: number }> {
  const child = spawn("pulumi", ["up", "--yes", "--non-interactive", "--skip-preview", "--stack", stack], { cwd: world.projectDir, env: { ...process.env, ...world.env }, stdio: ["ignore", "pipe", "pipe"] });
  const started = Date.now();
  let output = "";
  let killed = false;
  const check = (): void => {
    if (!killed && child.exitCode === null && killWhen(output, Date.now() - started)) {
      killed = true;
      child.kill(signal);
    }
  };
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    check();
  });
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const timer = setInterval(check, 20);
  await new Promise((resolve) => child.on("exit", resolve));
  clearInterval(timer);
  return { output, killed, pid: child.pid as number };
}

/**
 * The image events (`<action> <image>`) a Docker engine logged from `sinceMs` (ms since the epoch)
 * until now, read from its event log after the fact: no watcher that must be listening before the
 * work starts and still reading after it ends. Fractional seconds: a whole second rounded down
 * would let in the last events of the step before.
 */
export function imageEventsSince(sinceMs: number, options: { dockerHost?: string; action?: string } = {}): string[] {
  const until = Math.floor(Date.now() / 1000) + 1;
  const env = options.dockerHost === undefined ? process.env : { ...process.env, DOCKER_HOST: options.dockerHost };
  // Every event, filtered here: the engine keeps only its last DOCKER_EVENTS_KEPT events of all kinds
  // (moby daemon/events eventsLimit), and a log that full may have lost the first ones of the window.
  const output = execFileSync("docker", ["events", "--since", (sinceMs / 1000).toFixed(3), "--until", String(until), "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}"], { encoding: "utf8", env });
  const events = output.split("\n").filter((line) => line.trim() !== "");
  if (events.length >= DOCKER_EVENTS_KEPT) throw new Error(`the Docker engine logged ${events.length} events since ${new Date(sinceMs).toISOString()}: its log keeps ${DOCKER_EVENTS_KEPT}, so the first ones may be gone; read a shorter window`);
  return events.filter((line) => line.startsWith("image ") && (options.action === undefined || line.split(" ")[1] === options.action)).map((line) => line.slice("image ".length));
}

/** How many events a Docker engine keeps for `docker events --since` (moby daemon/events eventsLimit). */
const DOCKER_EVENTS_KEPT = 256;

/** Tags of a group whose manifest, config or layer blobs are missing in the registry. */
export async function brokenTags(group: string, client: RegistryClient = registry): Promise<string[]> {
  const broken: string[] = [];
  for (const [repository, tags] of Object.entries(await registryContents(group, client))) {
    for (const tag of tags) {
      const manifest = await client.manifest(`${group}/${repository}`, tag);
      const blobs = manifest === undefined ? [] : [manifest.manifest.config?.digest, ...(manifest.manifest.layers ?? []).map((layer) => layer.digest)];
      const missing = manifest === undefined ? ["manifest"] : [];
      for (const blob of blobs) if (blob === undefined || !(await client.blobExists(`${group}/${repository}`, blob))) missing.push(blob ?? "config");
      if (missing.length > 0) broken.push(`${repository}:${tag} (missing ${missing.join(", ")})`);
    }
  }
  return broken;
}
