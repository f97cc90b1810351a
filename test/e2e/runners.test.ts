/**
 * Two runners, one PostgreSQL backend: two clones of the project, each with its
 * own Docker engine, sharing stack state in Pulumi's PostgreSQL backend on a
 * cluster this test starts (scripts/services.sh, STRATA_BACKEND=postgres) and
 * stops. Different stacks at once both succeed; the same stack at once: one is
 * refused with a clear message; a runner killed with SIGKILL leaves a stack the
 * other recovers (the killed run's owner record is in the database too) and brings up;
 * both export the same stack.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { projectName } from "../../src/engine/lock-owner.js";
import { holdStackLock, postgresLocks } from "../../src/engine/stack-lock.js";
import { freePort } from "../helpers/net.js";
import { createWorld, type E2eWorld, endRunningUps, repoRoot, runStrata, secondRunner, startGroupUp, waitFor } from "./harness.js";

let state: string;
let serviceEnv: NodeJS.ProcessEnv;
let world: E2eWorld;
let runnerA: E2eWorld;
let runnerB: E2eWorld;
let password: string;
let clusterDir: string;

beforeAll(async () => {
  // mkdtemp's folder is 0700, like a clone under root's home: the postgres user cannot enter it,
  // so services.sh keeps the cluster in a folder of its own and says where.
  state = mkdtempSync(path.join(tmpdir(), "strata-e2e-runners-"));
  expect(statSync(state).mode & 0o777).toBe(0o700);
  const port = String(await freePort());
  serviceEnv = { ...process.env, STRATA_STATE: state, STRATA_BACKEND: "postgres", STRATA_POSTGRES_PORT: port };
  delete serviceEnv.PULUMI_BACKEND_URL;
  delete serviceEnv.STRATA_BACKEND_CHOSEN;
  const started = execFileSync(path.join(repoRoot, "scripts/services.sh"), ["start"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: serviceEnv });
  // The status line this test relies on must be there: no line at all is a failure, not an empty folder.
  const status = execFileSync(path.join(repoRoot, "scripts/services.sh"), ["status"], { encoding: "utf8", env: serviceEnv });
  const statusLine = /postgres: running at 127\.0\.0\.1:(\d+) .*\(cluster in (.+)\)/.exec(status);
  expect(statusLine, `services.sh status printed no "postgres: running at … (cluster in …)" line; it said:\n${status}`).not.toBeNull();
  expect(statusLine?.[1], status).toBe(port);
  clusterDir = statusLine?.[2] ?? "";
  expect(existsSync(path.join(clusterDir, "data", "PG_VERSION")), `cluster in ${clusterDir}; services.sh said: ${started}`).toBe(true);
  expect(clusterDir.startsWith(state), `cluster in ${clusterDir}; services.sh said: ${started}`).toBe(false);
  execFileSync(path.join(repoRoot, "scripts/engines.sh"), ["start", "1"], { stdio: "inherit", env: serviceEnv });
  const engineB = execFileSync(path.join(repoRoot, "scripts/engines.sh"), ["hosts"], { encoding: "utf8", env: serviceEnv }).trim();
  password = readFileSync(path.join(state, "postgres/pgpass"), "utf8").trim().split(":").pop() as string;
  const backend = { PULUMI_BACKEND_URL: `postgres://strata@127.0.0.1:${port}/strata?sslmode=disable`, PGPASSFILE: path.join(state, "postgres/pgpass") };
  world = createWorld("runners", { env: backend });
  for (const stack of ["a", "b", "shared", "killed"]) await world.stack(stack);
  runnerA = secondRunner(world, "a");
  runnerB = secondRunner(world, "b", { DOCKER_HOST: engineB });
});
afterAll(async () => {
  try {
    await world?.cleanup();
  } finally {
    execFileSync(path.join(repoRoot, "scripts/engines.sh"), ["stop"], { stdio: "inherit", env: serviceEnv });
    execFileSync(path.join(repoRoot, "scripts/services.sh"), ["stop"], { stdio: "inherit", env: serviceEnv });
    rmSync(state, { recursive: true, force: true });
    if (clusterDir !== undefined && clusterDir.startsWith("/var/lib/strata-postgres/")) rmSync(clusterDir, { recursive: true, force: true });
  }
});

const up = (runner: E2eWorld, stack: string) => runStrata(runner, ["up", "--stack", stack, "--catalog", runner.catalogDir]);

// A run a failed test did not wait for is killed before the next test starts.
afterEach(endRunningUps);

describe("two runners, one PostgreSQL backend", () => {
  it("different stacks at the same time: both succeed", async () => {
    const [a, b] = await Promise.all([up(runnerA, "a"), up(runnerB, "b")]);
    expect(a.code, a.out).toBe(0);
    expect(b.code, b.out).toBe(0);
    // Both publish the same tags on one channel: a layer one of them pushed before the other looked
    // is adopted by the other (the same fingerprint), so each accounts for all six, built or adopted.
    for (const run of [a, b]) {
      const summary = run.out.split("\n").map((line) => line.trim()).find((line) => /^\d+ (built|adopted|copied)(, \d+ (built|adopted|copied))*$/.test(line));
      expect(summary, run.out).toBeDefined();
      expect([...(summary ?? "").matchAll(/\d+/g)].reduce((sum, [count]) => sum + Number(count), 0), run.out).toBe(6);
    }
  });

  it("the same stack at the same time: never both; a refused one is told why; a next try converges", async () => {
    const results = await Promise.all([up(runnerA, "shared"), up(runnerB, "shared")]);
    const succeeded = results.filter((result) => result.code === 0);
    const refused = results.filter((result) => result.code !== 0);
    const outputs = results.map((result) => result.out).join("\n----\n");
    // Pulumi's lock (look, write, look again) lets at most one through; two that write at the same
    // instant each see the other's lock and both give up, which is refused, not broken.
    expect(succeeded.length, outputs).toBeLessThanOrEqual(1);
    expect(refused.length, outputs).toBeGreaterThanOrEqual(1);
    for (const run of refused) expect(run.out).toMatch(/stack shared is being updated by another run \(its lock is held\)/);
    // And the refused runner's next try is a no-op on what the other built (or, both refused, builds it).
    const retry = await up(runnerB, "shared");
    expect(retry.code, retry.out).toBe(0);
    if (succeeded.length === 1) expect(retry.out).toMatch(/6 unchanged/);
    else {
      // Both refused: the retry does the whole channel (built, copied or adopted: six in all).
      const summary = retry.out.split("\n").map((line) => line.trim()).find((line) => /^\d+ (built|adopted|copied)(, \d+ (built|adopted|copied))*$/.test(line));
      expect(summary, retry.out).toBeDefined();
      expect([...(summary ?? "").matchAll(/\d+/g)].reduce((sum, [count]) => sum + Number(count), 0), retry.out).toBe(6);
    }
  });

  it("Strata's hold of a stack's lock (strata ci-clean's) is Pulumi's lock in the database: an up is refused while Strata holds it, and Strata is refused while an up holds it", async () => {
    const project = projectName(world.projectDir);
    const hold = () => holdStackLock({ backendUrl: world.env.PULUMI_BACKEND_URL, project, stack: "shared", env: world.env, purpose: "strata ci-clean" });
    const held = await hold();
    expect(held.where).toMatch(new RegExp(`^strata/\\.pulumi/locks/organization/${project}/shared/[0-9a-f-]{36}\\.json \\(PostgreSQL table pulumi_state\\)$`));
    const refused = await up(runnerB, "shared");
    await held.release();
    expect(refused.code, refused.out).not.toBe(0);
    expect(refused.out).toMatch(/stack shared is being updated by another run \(its lock is held\)/);

    const run = startGroupUp(runnerA, "shared");
    const locks = () => postgresLocks(world.env.PULUMI_BACKEND_URL as string, project, "shared", world.env, (why, detail) => new Error(`${why}: ${detail}`));
    let seen = false;
    for (let waited = 0; waited < 120_000 && !seen; waited += 50) {
      seen = (await locks()).length > 0;
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(seen, run.output()).toBe(true);
    // Frozen while it holds the lock, so Strata surely meets it.
    run.killGroup("SIGSTOP");
    const meeting = await hold().then((lock) => lock.release().then(() => "taken"), (error: unknown) => String(error));
    run.killGroup("SIGCONT");
    expect(meeting).toMatch(new RegExp(`stack shared is locked by another run, so nothing was changed: strata/\\.pulumi/locks/organization/${project}/shared/[0-9a-f-]{36}\\.json \\(PostgreSQL table pulumi_state\\): \\S+@${hostname()} \\(pid \\d+\\)`));
    expect(await run.exited, run.output()).toBe(0);
    // Its lock gone with it, Strata's is taken and released again.
    await (await hold()).release();
    expect(await locks()).toEqual([]);
    // A stack this database does not hold: a lock there would hold off nothing.
    await expect(holdStackLock({ backendUrl: world.env.PULUMI_BACKEND_URL, project, stack: "nosuch", env: world.env, purpose: "strata ci-clean" }))
      .rejects.toThrow(/stack nosuch \(project \S+\) is not in the backend PostgreSQL table pulumi_state, so a lock taken there would hold off no run of the channel; nothing was changed/);
  });

  it("a runner killed with SIGKILL mid-run: the other recovers the stack and brings it up", async () => {
    // strata up's whole process group (a CI job's timeout); its owner record is in the database, beside the lock.
    const run = startGroupUp(runnerA, "killed");
    // An image step under way: the engine has long started, and strata up has written its owner record.
    expect(await waitFor(() => /Image \S+ (creating|updating)/.test(run.output()), 120_000), run.output()).toBe(true);
    run.killGroup("SIGKILL");
    expect(await run.exited).toBe("SIGKILL");
    const locked = await up(runnerB, "killed");
    expect(locked.code).not.toBe(0);
    expect(locked.out).toMatch(/stack killed is being updated by another run \(its lock is held\)/);
    const records = execFileSync("psql", ["-X", "-A", "-t", "-c", "SELECT record FROM strata_lock_owners WHERE stack = 'killed'", world.env.PULUMI_BACKEND_URL as string], { encoding: "utf8", env: { ...process.env, ...world.env } })
      .trim().split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as { pid: number; host: string; bootId: string; pidNamespace: string });
    expect(records).toHaveLength(1);
    const pid = records[0]?.pid as number;
    // recover read the lock and its owner record from the database: it names the killed engine and this host,
    // proves it gone in this boot and namespace, and releases it.
    const recovered = await runStrata(runnerB, ["recover", "--stack", "killed"]);
    expect(recovered.code, recovered.out).toBe(0);
    expect(recovered.out).toMatch(new RegExp(`released lock.*PostgreSQL table pulumi_state.*pid ${pid} on host ${hostname()}.*is not running any more`, "s"));
    expect((await runStrata(runnerB, ["recover", "--stack", "killed"])).out).toMatch(/nothing to do/);
    const after = await up(runnerB, "killed");
    expect(after.code, after.out).toBe(0);
  });

  it("both runners export the same stack, and the password is in no output or state", async () => {
    const exportOf = (runner: E2eWorld): string => execFileSync("pulumi", ["stack", "export", "--stack", "shared"], { cwd: runner.projectDir, env: { ...process.env, ...runner.env }, encoding: "utf8" });
    const fromA = exportOf(runnerA);
    expect(JSON.parse(fromA)).toEqual(JSON.parse(exportOf(runnerB)));
    expect(fromA).not.toContain(password);
    const logs = execFileSync("sh", ["-c", `cat ${path.join(state, "logs")}/*.log ${clusterDir}/log/*.log`], { encoding: "utf8" });
    expect(logs).not.toContain(password);
    // Pulumi records the backend URL in its workspace files: the URL carries no password.
    const pulumiHome = process.env.PULUMI_HOME ?? path.join(process.env.HOME ?? "/root", ".pulumi");
    const found = execFileSync("sh", ["-c", `grep -rl -F -- "$0" "$1" || true`, password, pulumiHome], { encoding: "utf8" }).trim();
    expect(found).toBe("");
  });
});
