/**
 * Faults against the real engine, Docker engine and registry: a failing
 * build, the Docker engine unreachable, two ups at once, interrupted runs
 * (SIGINT, SIGKILL, a whole process group) recovered as the README documents,
 * their leftover plugins ended, and locks of live runs that recovery must leave alone:
 * on this host, on another host, in another PID namespace under the same host name.
 * Nothing lost, nothing half-pushed. Registry faults: fault-corpus.test.ts.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.js";
import { leftoverPlugins, processTable } from "../../src/engine/leftover-plugins.js";
import { type LockOwner, parseOwner } from "../../src/engine/lock-owner.js";
import { removeImages } from "../../bench/docker-images.js";
import { brokenTags, changed, createWorld, type E2eStack, type E2eWorld, endRunningUps, interruptUp, registry as sharedRegistry, runStrata, startGroupUp, upWithSummary, waitFor } from "./harness.js";
import { freePort } from "../helpers/net.js";
import { ACKNOWLEDGE_MS } from "../../src/engine/cli-run.js";

let world: E2eWorld;
beforeAll(() => {
  world = createWorld("faults");
});
afterAll(async () => {
  await world?.cleanup();
});

const strataUp = (stack: string) => upWithSummary(world, stack, `${stack}-summary`);

/** Kill once the engine is creating or updating this layer's image. */
const buildingLayer = (layer: string) => (output: string): boolean => new RegExp(`:Image ${layer} (creating|updating)`).test(output);
const strataRecover = (stack: string) => runStrata(world, ["recover", "--stack", stack]);
const lockDir = (stack: string): string => path.join(world.root, "state/.pulumi/locks/organization/strata", stack);

/** The owner records strata up wrote for a stack (file backend: beside Pulumi's folder). */
function ownerRecords(stack: string): LockOwner[] {
  const dir = path.join(world.root, "state/.strata/lock-owners/strata", stack);
  return existsSync(dir) ? readdirSync(dir).flatMap((file) => parseOwner(readFileSync(path.join(dir, file), "utf8")) ?? []) : [];
}

/** Processes of a stack's runs in this world whose engine is gone (what recover ends). */
const leftovers = (stack: string): string[] => leftoverPlugins(processTable(), { stack, backendUrl: world.env.PULUMI_BACKEND_URL as string }).map(({ plugin }) => plugin.argv.join(" "));


/** Makes a layer's build sleep first, so a signal lands mid-build; returns the undo. */
function slowDown(layer: string, seconds: number): () => void {
  const dockerfile = path.join(world.catalogDir, layer, "Dockerfile");
  const original = readFileSync(dockerfile, "utf8");
  if (!original.includes("RUN cat")) throw new Error(`${dockerfile} has no "RUN cat" to slow down: the fixture changed`);
  writeFileSync(dockerfile, original.replace("RUN cat", `RUN sleep ${seconds} && cat`));
  return () => writeFileSync(dockerfile, original);
}

/** Every tag of a group resolves to a manifest whose blobs all exist. */
async function expectConsistent(group: string, registry: RegistryClient = sharedRegistry): Promise<void> {
  expect(await brokenTags(group, registry)).toEqual([]);
}

/** A registry of this test's own, so stopping it cannot disturb the rest of the suite. */
async function startRegistry(port: number, storage: string): Promise<ChildProcess> {
  const config = path.join(storage, "config.yml");
  writeFileSync(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${storage}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  const client = new RegistryClient({ registry: `127.0.0.1:${port}` });
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await client.repositories();
      return child;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error("the test registry did not start");
}

/** True once any blob upload into the registry's storage has begun. */
function uploadStarted(storage: string): boolean {
  const repositories = path.join(storage, "data/docker/registry/v2/repositories");
  const walk = (dir: string, depth: number): boolean => {
    if (!existsSync(dir) || depth > 4) return false;
    return readdirSync(dir, { withFileTypes: true }).some((entry) => entry.isDirectory() && (entry.name === "_uploads" ? readdirSync(path.join(dir, entry.name)).length > 0 : walk(path.join(dir, entry.name), depth + 1)));
  };
  return walk(repositories, 0);
}



// A run a failed test did not wait for is killed before the next test starts.
afterEach(endRunningUps);

describe("faults end to end", () => {
  it("a failing layer: its descendants are skipped, the other branch builds, exit 1; after the fix only the rest builds", async () => {
    const stack = "broken";
    await world.stack(stack, { channel: "broken" });
    const dockerfile = path.join(world.catalogDir, "libs/Dockerfile");
    const original = readFileSync(dockerfile, "utf8");
    writeFileSync(dockerfile, original.replace("RUN cat", "RUN echo 'simulated failure' >&2 && false && cat"));
    const first = await strataUp(stack).finally(() => writeFileSync(dockerfile, original));
    expect(first.code).toBe(1);
    expect(first.summary.ok).toBe(false);
    expect(first.results).toEqual({ base: "built", tools: "built", db: "built", libs: "failed", "app-base": "skipped", app: "skipped" });
    expect(first.summary.layers.find((layer) => layer.layer === "libs")?.detail).toMatch(/^error reading build output: (executor failed running .*simulated failure.*|process ".*simulated failure.*" did not complete successfully): exit code: 1$/); // Docker 20.10's BuildKit words it one way, Docker 29's the other
    // The failing step and its own output, not only the engine's one-line error.
    expect(first.out).toMatch(/libs failed; its last output:\n(.*\n)*\s+\[\d\/\d\] RUN echo 'simulated failure'.*\n(.*\n)*\s+simulated failure\n/);
    expect(first.summary.layers.find((layer) => layer.layer === "app")?.detail).toBe("parent app-base failed");
    expect(first.out).toMatch(/libs\s+failed/);

    const second = await strataUp(stack);
    expect(second.code).toBe(0);
    expect(second.results).toEqual({ base: "unchanged", tools: "unchanged", db: "unchanged", libs: "built", "app-base": "built", app: "built" });
  });

  it("the Docker engine unreachable: a clear message, and the stack state stays sound", async () => {
    const stack = await world.stack("nodocker", { channel: "nodocker" });
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = "unix:///tmp/strata-no-docker-here.sock";
    try {
      await expect(stack.up()).rejects.toThrow(/The Docker engine is not running: start it with scripts\/services.sh start/);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    const state = await stack.stack.exportStack();
    expect(JSON.stringify(state.deployment)).not.toMatch(/pending_operations"\s*:\s*\[\s*\{/);
    const { operations } = await stack.up();
    expect(changed(operations).length).toBeGreaterThan(0);
    expect(changed((await stack.up()).operations)).toEqual([]);
  });

  it("two ups at once on one stack: the backend's lock refuses the second, nothing is lost", async () => {
    const stack = await world.stack("twice", { channel: "twice" });
    const results = await Promise.allSettled([stack.up(), stack.up()]);
    const refused = results.filter((result) => result.status === "rejected");
    // Never both: the lock lets one update at most. Started at the same instant on the file backend,
    // the loser may meet the winner's lock while it is still a temp file (Pulumi's own race; the
    // refusal then names that file) — or, rarely, both back off: then nothing ran at all.
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const refusal of refused) expect(String((refusal as PromiseRejectedResult).reason)).toMatch(/currently locked|\.pulumi\/locks\/\S+: no such file or directory/);
    if (refused.length === 2) await stack.up();
    expect(Object.keys(await stack.outputs()).sort()).toEqual(["app", "app-base", "base", "db", "libs", "tools"]);
    expect(changed((await stack.up()).operations)).toEqual([]);
    await expectConsistent(stack.group);
  });

  for (const signal of ["SIGINT", "SIGKILL"] as const) {
    it(`up interrupted with ${signal} mid-tree converges after the documented recovery`, async () => {
      const name = `interrupt-${signal.toLowerCase()}`;
      const stack: E2eStack = await world.stack(name, { channel: name });
      // Slow builds down so the signal lands mid-tree.
      const restore = slowDown("tools", 4);
      try {
        if (signal === "SIGINT") {
          const { killed } = await interruptUp(world, name, buildingLayer("tools"), signal);
          expect(killed, "the signal landed before the run ended").toBe(true);
        } else {
          // strata up's engine killed alone (an OOM kill): its plugins live on, reparented.
          const run = startGroupUp(world, name);
          expect(await waitFor(() => /tools.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
          const [owner] = ownerRecords(name);
          expect(owner, "strata up recorded who owns the lock").toBeDefined();
          process.kill(owner?.pid as number, "SIGKILL");
          expect(await run.exited).toBe(1);
          expect(await waitFor(() => leftovers(name).length > 0, 2000), "the killed engine left plugins running").toBe(true);
          // The README's recovery after a kill: one command, then run again. The record proves the
          // engine gone in this boot and namespace: no --force.
          const recovered = await strataRecover(name);
          expect(recovered.code, recovered.out).toBe(0);
          expect(recovered.out).toMatch(/released lock.*is not running any more/s);
          expect(recovered.out).toMatch(/ended leftover plugin.*its engine is gone/s);
          expect(leftovers(name)).toEqual([]);
        }
        await stack.up();
        // base was built and pushed before the signal. Ctrl-C: the engine wrote the state as it closed,
        // so base stays the docker.Image it built. SIGKILL of strata up's engine, which writes the state
        // only when the run ends (cli-run.ts checkpointEnv): the state never heard of base, and the next
        // up adopts what the registry holds with base's fingerprint instead of building it again.
        expect((await stack.outputs()).base?.origin).toBe(signal === "SIGINT" ? "built" : "adopted");
      } finally {
        restore();
      }
      const { operations } = await stack.up();
      // The tools Dockerfile is back as it was: tools and its subtree rebuild once more, then all is settled.
      expect(changed(operations).every((layer) => ["tools", "libs", "app-base", "app", "db"].includes(layer))).toBe(true);
      expect(changed((await stack.up()).operations)).toEqual([]);
      const outputs = await stack.outputs();
      expect(Object.values(outputs).map((layer) => layer.ref.split("/").slice(1).join("/")).sort()).toEqual([
        `${stack.group}/base-tools-db:1.0-p0`, `${stack.group}/base-tools-libs-app-base:1.0-p0`, `${stack.group}/base-tools-libs-app:1.0-p2`,
        `${stack.group}/base-tools-libs:1.0-p0`, `${stack.group}/base-tools:1.0-p0`, `${stack.group}/base:1.0-p0`,
      ].sort());
      for (const layer of Object.values(outputs)) {
        const manifest = await sharedRegistry.manifest(`${stack.group}/${layer.image}`, layer.tag);
        expect(layer.digestRef.endsWith(`@${manifest?.digest}`)).toBe(true);
      }
      const state = JSON.stringify((await stack.stack.exportStack()).deployment);
      expect(state).not.toMatch(/pending_operations"\s*:\s*\[\s*\{/);
      await expectConsistent(stack.group);
    });
  }

  // strata up has the engine write the state only as the run ends on a mutable channel (cli-run.ts
  // checkpointEnv): a stop that let strata up die first (its engine then died of SIGPIPE before that
  // write) would leave base unrecorded and the lock held.
  // The build must outlast the signal's way to the engine: at once for the group, ACKNOWLEDGE_MS
  // later for strata up alone. A tools build of 4 s ended the whole run before that pass-on once
  // (CI, 2026-12-06): the run was never interrupted, so there was nothing to test.
  const toolsSeconds = ACKNOWLEDGE_MS / 1000 + 10;
  const stops: [string, NodeJS.Signals, (run: ReturnType<typeof startGroupUp>) => void][] = [
    ["Ctrl-C to its whole process group (a terminal)", "SIGINT", (run) => run.killGroup("SIGINT")],
    ["SIGTERM to strata up alone (kill <pid>), which passes it on", "SIGTERM", (run) => process.kill(run.pid, "SIGTERM")],
  ];
  for (const [how, signal, stop] of stops) {
    it(`strata up stopped by ${how}: the engine cancels, writes the state and releases the lock; the next up needs no recover`, async () => {
      const name = `stop-${how.startsWith("Ctrl-C") ? "int" : "term"}`;
      const stack: E2eStack = await world.stack(name, { channel: name });
      const restore = slowDown("tools", toolsSeconds);
      try {
        const run = startGroupUp(world, name);
        expect(await waitFor(() => /tools.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
        stop(run);
        // strata up ends once the engine has, after its summary and report, and then by the same
        // signal (bin/strata.js), as a shell expects of an interrupted command: 130 or 143, not 1.
        expect(await run.exited, run.output()).toBe(signal);
        expect(run.output()).toMatch(/^report: /m);
        expect(run.output()).toMatch(/(\^C|SIGTERM) received; cancelling/);
        expect(run.output()).not.toMatch(/received; terminating/);
        // Cancelled, not finished: the engine let tools' build end and started none of its children.
        for (const child of ["libs", "db", "app-base", "app"]) expect(run.output()).toMatch(new RegExp(`^${child}\\s+skipped\\s`, "m"));
      } finally {
        restore();
      }
      // The engine ended on its own: it released its lock, and strata up removed its owner record.
      expect(ownerRecords(name)).toEqual([]);
      const again = await strataUp(name);
      expect(again.code, again.out).toBe(0);
      // base was built before the stop, and the state the engine wrote as it closed says so.
      expect((await stack.outputs()).base?.origin).toBe("built");
      await expectConsistent(stack.group);
    });
  }

  it("strata up on an immutable channel, its engine killed with SIGKILL: the state was written after every step (a PULUMI_SKIP_CHECKPOINTS=true in the environment notwithstanding), so base stays the image it built, witnessed", async () => {
    const name = "kill-immutable";
    const stack: E2eStack = await world.stack(name, { channel: name, immutable: "true" });
    const restore = slowDown("tools", 4);
    try {
      const run = startGroupUp(world, name, { env: { PULUMI_SKIP_CHECKPOINTS: "true" } });
      expect(await waitFor(() => /tools.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
      const [owner] = ownerRecords(name);
      process.kill(owner?.pid as number, "SIGKILL");
      expect(await run.exited).toBe(1);
      const recovered = await strataRecover(name);
      expect(recovered.code, recovered.out).toBe(0);
    } finally {
      restore();
    }
    await stack.up();
    expect((await stack.outputs()).base?.origin).toBe("built");
    await expectConsistent(stack.group);
  });

  it("a kill that lands in the checkpoint's metadata write: the stack cannot be read; strata recover repairs it, up converges, no tag lost", async () => {
    const name = "sidecar";
    const stack = await world.stack(name, { channel: name });
    await stack.up();
    const before = await stack.outputs();
    const restore = slowDown("libs", 4);
    try {
      const run = startGroupUp(world, name);
      expect(await waitFor(() => /libs.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
      run.killGroup("SIGKILL");
      expect(await run.exited).toBe("SIGKILL");
    } finally {
      restore();
    }
    // fileblob rewrites <stack>.json.attrs in place (truncate, then write): a kill in between leaves it
    // empty. The timing of a real kill is luck; its result is this, made here on purpose.
    const sidecar = path.join(world.root, "state/.pulumi/stacks/strata", `${name}.json.attrs`);
    expect(existsSync(sidecar)).toBe(true);
    writeFileSync(sidecar, "");
    const refused = spawnSync("pulumi", ["cancel", "--yes", "--stack", name], { cwd: world.projectDir, env: { ...process.env, ...world.env }, encoding: "utf8" });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/failed to load checkpoint: EOF/);

    const recovered = await strataRecover(name);
    expect(recovered.code, recovered.out).toBe(0);
    expect(recovered.out).toMatch(/removed sidecar/);
    expect(recovered.out).toMatch(/released lock/);
    expect((await strataRecover(name)).out).toMatch(/nothing to do/);
    const run = await strataUp(name);
    expect(run.code, run.out).toBe(0);
    expect(changed((await stack.up()).operations)).toEqual([]);
    // Nothing pushed before the kill is lost: every earlier tag still resolves to its digest.
    for (const layer of Object.values(before)) {
      const manifest = await sharedRegistry.manifest(`${stack.group}/${layer.image}`, layer.tag);
      expect(layer.digestRef.endsWith(`@${manifest?.digest}`)).toBe(true);
    }
    await expectConsistent(stack.group);
  });

  it("a live run on this host is refused; its whole process group killed with SIGKILL (a CI job's timeout), then strata recover at once: released, up converges", async () => {
    const name = "groupkill";
    const stack = await world.stack(name, { channel: name });
    const restore = slowDown("tools", 8);
    try {
      const run = startGroupUp(world, name);
      expect(await waitFor(() => /tools.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
      const refused = await strataRecover(name);
      expect(refused.code, refused.out).toBe(1);
      expect(refused.out).toMatch(/still running here: pid \d+ on host .*nothing was changed/s);
      expect(readdirSync(lockDir(name)).filter((file) => file.endsWith(".json"))).toHaveLength(1);
      expect(run.output()).not.toMatch(/error:/);
      run.killGroup("SIGKILL");
      expect(await run.exited).toBe("SIGKILL");
      // The engine starts its plugins in process groups of their own: the group kill leaves them running.
      expect(leftovers(name).length, "plugins outlived the group kill").toBeGreaterThan(0);
      // At once: the killed pulumi may still be a zombie (kill(pid, 0) finds it); recover reads /proc instead.
      const recovered = await strataRecover(name);
      expect(recovered.code, recovered.out).toBe(0);
      expect(recovered.out).toMatch(/released lock.*is not running any more/s);
      expect(recovered.out).toMatch(/ended leftover plugin/);
      expect(leftovers(name)).toEqual([]);
    } finally {
      restore();
    }
    const run = await strataUp(name);
    expect(run.code, run.out).toBe(0);
    expect(changed((await stack.up()).operations)).toEqual([]);
    await expectConsistent(stack.group);
  });

  it("a lock held by a live run on another host is refused (host, pid, age named); --force once that run is gone", async () => {
    const name = "otherhost";
    const stack = await world.stack(name, { channel: name });
    const restore = slowDown("libs", 20);
    const run = startGroupUp(world, name, { hostname: "strata-other-host" });
    try {
      expect(await waitFor(() => /libs.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
      const refused = await strataRecover(name);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/belongs to pid \d+ on host strata-other-host \(user \w+\), (\d+ min )?\d+ s old.*cannot check.*nothing was changed.*--force/s);
      // The live run was not disturbed: still running, its lock still there.
      expect(readdirSync(path.join(world.root, "state/.pulumi/locks/organization/strata", name)).filter((file) => file.endsWith(".json"))).toHaveLength(1);
    } finally {
      run.killGroup("SIGKILL");
      await run.exited;
      restore();
    }
    expect((await strataRecover(name)).code).toBe(1);
    const forced = await runStrata(world, ["recover", "--stack", name, "--force"]);
    expect(forced.code, forced.out).toBe(0);
    expect(forced.out).toMatch(/released lock.*--force/s);
    const after = await strataUp(name);
    expect(after.code, after.out).toBe(0);
    expect(changed((await stack.up()).operations)).toEqual([]);
  });

  it("a live run in another PID namespace under the same host name (two CI containers on one backend) is refused, never read as dead", async () => {
    const name = "otherpidns";
    const stack = await world.stack(name, { channel: name });
    const restore = slowDown("libs", 20);
    const run = startGroupUp(world, name, { pidNamespace: true });
    try {
      expect(await waitFor(() => /libs.*(creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
      const [owner] = ownerRecords(name);
      expect(owner?.pidNamespace).not.toBe(readlinkSync("/proc/self/ns/pid"));
      const refused = await strataRecover(name);
      expect(refused.code, refused.out).toBe(1);
      expect(refused.out).toMatch(new RegExp(`cannot tell whether the stack's lock owner, pid ${owner?.pid} on host ${hostname()} .*another PID namespace.*nothing was changed.*--force`, "s"));
      expect(readdirSync(lockDir(name)).filter((file) => file.endsWith(".json"))).toHaveLength(1);
      expect(run.output()).not.toMatch(/error:/);
    } finally {
      run.killGroup("SIGKILL");
      await run.exited;
      restore();
    }
    // Gone now, but not provably so from here: still only with --force.
    expect((await strataRecover(name)).code).toBe(1);
    const forced = await runStrata(world, ["recover", "--stack", name, "--force"]);
    expect(forced.code, forced.out).toBe(0);
    const after = await strataUp(name);
    expect(after.code, after.out).toBe(0);
    expect(changed((await stack.up()).operations)).toEqual([]);
  });

  it("the registry stops during a push: a clear failure; after it is back a rerun completes, and no tag points at a missing manifest or blob", async () => {
    const storage = path.join(world.root, "own-registry");
    mkdirSync(storage);
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const ownRegistry = new RegistryClient({ registry: address });
    let server = await startRegistry(port, storage);
    const stack = await world.stack("regstop", { channel: "regstop", registry: address });
    // 32 MB that does not compress, in tools' image: its push takes long enough to stop the registry under it.
    const dockerfile = path.join(world.catalogDir, "tools/Dockerfile");
    const original = readFileSync(dockerfile, "utf8");
    expect(original, "the fixture's tools Dockerfile copies tools.txt").toContain("COPY tools.txt");
    const big = path.join(world.catalogDir, "tools/big.bin");
    writeFileSync(big, randomBytes(32 << 20));
    writeFileSync(dockerfile, original.replace("COPY tools.txt", "COPY big.bin /big.bin\nCOPY tools.txt"));
    try {
      const run = stack.up();
      run.catch(() => undefined);
      for (let waited = 0; !uploadStarted(storage) && waited < 60_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(uploadStarted(storage)).toBe(true);
      server.kill("SIGKILL");
      await expect(run).rejects.toThrow(/error reading push output[\s\S]*(connection refused|EOF|connection reset|broken pipe)/);
      server = await startRegistry(port, storage);
      await stack.up();
      expect(changed((await stack.up()).operations)).toEqual([]);
      await expectConsistent(stack.group, ownRegistry);
      const outputs = await stack.outputs();
      for (const layer of Object.values(outputs)) {
        expect(layer.digestRef.endsWith(`@${(await ownRegistry.manifest(`${stack.group}/${layer.image}`, layer.tag))?.digest}`)).toBe(true);
      }
    } finally {
      server.kill("SIGKILL");
      rmSync(big, { force: true });
      writeFileSync(dockerfile, original);
      // The world removes images of the shared registry only; these are tagged for this one.
      removeImages(`${address}/`);
    }
  });
});
