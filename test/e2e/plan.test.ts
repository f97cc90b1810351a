/**
 * `strata plan` against the real engine and registry, each plan checked
 * against what the following `up` actually did.
 */
import { rmSync, writeFileSync, appendFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.js";
import { runCli } from "../../src/cli/commands.js";
import { changed, createWorld, type E2eStack, type E2eWorld, type Operations, registryAddress } from "./harness.js";

let world: E2eWorld;
let dev: E2eStack;

beforeAll(async () => {
  world = createWorld("plan");
  dev = await world.stack("plan", { channel: "dev" });
});
afterAll(async () => {
  await world?.cleanup();
});

interface Row { layer: string; status: string; reason: string; oldRef: string | null; newRef: string | null }

async function plan(extra: string[] = []): Promise<{ code: number; rows: Row[]; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(["plan", "--stack", "plan", "--project", world.projectDir, "--catalog", world.catalogDir, "--json", ...extra], {
    out: (text) => (out += text), err: (text) => (err += text), env: world.env, cwd: world.projectDir,
  });
  return { code, rows: code === 0 || out.startsWith("[") ? (JSON.parse(out) as Row[]) : [], err };
}

const statusOf = (rows: Row[]): Record<string, string> => Object.fromEntries(rows.map((row) => [row.layer, row.reason === "" ? row.status : `${row.status}: ${row.reason}`]));

/** The plan agrees with up: what it calls new/rebuild/retag/removed is exactly what up changed. */
function expectAgreement(rows: Row[], operations: Operations): void {
  const planned = rows.filter((row) => row.status !== "unchanged").map((row) => row.layer).sort();
  expect(changed(operations)).toEqual(planned);
  for (const row of rows) {
    const op = operations.get(row.layer);
    const expected = { new: "create", rebuild: "update", retag: "update", removed: "delete", unchanged: "same" }[row.status];
    expect(`${row.layer}: ${op}`).toBe(`${row.layer}: ${expected}`);
  }
}

describe("strata plan end to end", () => {
  it("with no registry answering, every layer is blocked (exit 1): an unknown is never read as 'not published'", async () => {
    // A free loopback port: nothing listens there.
    const nowhere = `127.0.0.1:${await freePort()}`;
    await dev.stack.setConfig("strata:registry", { value: nowhere });
    const { code, rows, err } = await plan().finally(() => dev.stack.setConfig("strata:registry", { value: registryAddress }));
    expect(code).toBe(1);
    expect(err).toMatch(new RegExp(`registry ${nowhere} could not answer for layer "base".*connection refused.*Nothing was built or pushed.*fix: check that the registry at ${nowhere} runs`, "s"));
    expect(new Set(rows.map((row) => row.status))).toEqual(new Set(["blocked"]));
    expect(rows.find((row) => row.layer === "base")?.reason).toMatch(new RegExp(`^registry ${nowhere} answered connection refused`));
    expect(rows).toHaveLength(6);
    const first = await plan();
    const { operations } = await dev.up();
    expectAgreement(first.rows, operations);
  });

  it("a content change: that layer content changed, its descendants parent changed, the rest unchanged", async () => {
    appendFileSync(path.join(world.catalogDir, "libs/libs.txt"), "more\n");
    const { code, rows } = await plan();
    expect(code).toBe(0);
    expect(statusOf(rows)).toEqual({
      base: "unchanged: same inputs",
      tools: "unchanged: same inputs",
      db: "unchanged: same inputs",
      libs: "rebuild: content changed",
      "app-base": "rebuild: parent changed",
      app: "rebuild: parent changed",
    });
    expectAgreement(rows, (await dev.up()).operations);
  });

  it("a version bump only: retag", async () => {
    writeFileSync(path.join(world.catalogDir, "db/layer.yaml"), "kind: service\nparent: tools\nversion: 1.0.1\n");
    const { rows } = await plan();
    expect(rows.find((row) => row.layer === "db")).toMatchObject({ status: "retag", reason: "version bumped", newRef: expect.stringMatching(/base-tools-db:1\.0-p1$/) as unknown as string });
    expect(rows.filter((row) => row.status !== "unchanged").map((row) => row.layer)).toEqual(["db"]);
    expectAgreement(rows, (await dev.up()).operations);
  });

  it("a removed layer", async () => {
    rmSync(path.join(world.catalogDir, "db"), { recursive: true });
    const { rows } = await plan();
    expect(rows.find((row) => row.layer === "db")).toMatchObject({ status: "removed", newRef: null });
    expectAgreement(rows, (await dev.up()).operations);
  });

  it("an immutable channel: blocked layers, exit 1, and up refuses", async () => {
    await dev.stack.setConfig("strata:immutable", { value: "true" });
    appendFileSync(path.join(world.catalogDir, "tools/tools.txt"), "changed\n");
    const { code, rows } = await plan();
    expect(code).toBe(1);
    expect(statusOf(rows)).toEqual({
      base: "unchanged: same inputs",
      tools: "blocked: content changed without a version bump",
      libs: "blocked: parent changed without a version bump",
      "app-base": "blocked: parent changed without a version bump",
      app: "blocked: parent changed without a version bump",
    });
    await expect(dev.up()).rejects.toThrow(/an immutable channel never moves a tag/);
    const markdown = await runCli(["plan", "--stack", "plan", "--project", world.projectDir, "--catalog", world.catalogDir, "--markdown"], { out: () => undefined, err: () => undefined, env: world.env, cwd: world.projectDir });
    expect(markdown).toBe(1);
  });

  it("the program stopped during the preview by a user's error (the Docker engine down): one paragraph, exit 1, no stack trace", async () => {
    let out = "";
    let err = "";
    const code = await runCli(["plan", "--stack", "plan", "--project", world.projectDir, "--catalog", world.catalogDir], {
      out: (text) => (out += text), err: (text) => (err += text), env: { ...world.env, DOCKER_HOST: "unix:///nonexistent/strata-e2e-docker.sock" }, cwd: world.projectDir,
    });
    expect(code, out + err).toBe(1);
    expect(err).toMatch(/the preview of stack plan stopped: .*Docker engine/);
    expect(err).toMatch(/fix:|start it/);
    expect(err).not.toMatch(/\n\s+at \S+ \(|CommandError|stdout:/);
  });

  for (const immutable of ["false", "true"]) {
    it(`a stack whose state cannot be read (immutable: ${immutable}): one paragraph naming the state and the fix, exit 1, no preview`, async () => {
      await dev.stack.setConfig("strata:immutable", { value: immutable });
      // What a kill leaves on the file backend (faults.test.ts): an empty metadata sidecar.
      const sidecar = path.join(world.root, "state/.pulumi/stacks/strata", "plan.json.attrs");
      writeFileSync(sidecar, "");
      let err = "";
      const code = await runCli(["plan", "--stack", "plan", "--project", world.projectDir, "--catalog", world.catalogDir], {
        out: (text) => (err += text), err: (text) => (err += text), env: world.env, cwd: world.projectDir,
      });
      rmSync(sidecar);
      expect(code, err).toBe(1);
      expect(err).toMatch(/(this stack's state cannot be read \(pulumi stack export failed: .*\), so Strata cannot tell what it pushed under its tags|Pulumi could not open or read stack plan: .*)/);
      expect(err).toMatch(/strata recover --stack plan/);
      expect(err).not.toMatch(/\n\s+at \S+ \(/);
    });
  }
});
