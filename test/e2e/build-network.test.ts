/**
 * strata:buildNetwork reaches the engine's RUN steps, with either builder, and a change of it
 * rebuilds nothing. The app layer gets a RUN that passes only with no network interface but the
 * loopback (`none`): the same catalog fails on the engine's default network, so a setting that
 * went nowhere would fail the `none` runs; and after `host` is set on a stack that built with
 * `none`, a run that rebuilt the app would fail on the host's interfaces, so it must build nothing.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type E2eWorld, registry, runStrata, upWithSummary } from "./harness.js";

let world: E2eWorld;

beforeAll(() => {
  world = createWorld("build-network");
  // /proc/net/dev lists one line with a colon per interface: `none` leaves only lo.
  appendFileSync(path.join(world.catalogDir, "app", "Dockerfile"), 'RUN test "$(grep -c : /proc/net/dev)" -eq 1 || { cat /proc/net/dev; exit 1; }\n');
});
afterAll(async () => {
  await world?.cleanup();
});

describe("strata:buildNetwork", () => {
  it("fails the loopback-only step on the engine's default network (what proves the runs below used theirs)", async () => {
    await world.stack("default", { channel: "netdefault", layers: "app" });
    const run = await upWithSummary(world, "default", "default");
    expect(run.code, run.out).not.toBe(0);
    expect(run.results.app, run.out).toBe("failed");
    expect(run.out).toMatch(/eth0/);
  });

  it("builds with no network (docker.Image); changed to host, rebuilds nothing, then builds a changed layer on the host's network", async () => {
    const stack = await world.stack("none", { channel: "netnone", layers: "app", buildNetwork: "none" });
    const run = await upWithSummary(world, "none", "none");
    expect(run.code, run.out).toBe(0);
    expect(run.results.app, run.out).toBe("built");
    await stack.stack.setConfig("strata:buildNetwork", { value: "host" });
    const again = await upWithSummary(world, "none", "none-then-host");
    expect(again.code, again.out).toBe(0);
    expect(Object.values(again.results).filter((result) => result === "built"), again.out).toEqual([]);
    // The app's content changes: it is rebuilt, on the host's network now (more interfaces than lo),
    // so its loopback-only step fails. Had the layer kept the network it was first built with, it would pass.
    writeFileSync(path.join(world.catalogDir, "app", "app.txt"), "app content: rebuilt on the host's network\n");
    const changed = await upWithSummary(world, "none", "host-changed-app");
    expect(changed.code, changed.out).not.toBe(0);
    expect(changed.results.app, changed.out).toBe("failed");
    // The failing step's own listing of /proc/net/dev (its header), so it was this check that failed.
    expect(changed.out).toMatch(/Inter-\|/);
  });

  it("builds with no network through Strata's own LayerImage", async () => {
    await world.stack("strata", { channel: "netstrata", layers: "app", buildNetwork: "none", builder: "strata" });
    const run = await upWithSummary(world, "strata", "strata-none");
    expect(run.code, run.out).toBe(0);
    expect(run.results.app, run.out).toBe("built");
  });

  it("refuses a network it does not know, naming the file, the field and the values, and pushes nothing", async () => {
    const stack = await world.stack("bridge", { channel: "netbridge", layers: "app", buildNetwork: "bridge" });
    const { code, out } = await runStrata(world, ["up", "--stack", "bridge", "--catalog", world.catalogDir]);
    expect(code, out).not.toBe(0);
    expect(out).toMatch(/Pulumi\.bridge\.yaml/);
    expect(out).toMatch(/strata:buildNetwork/);
    expect(out).toMatch(/use one of default, host, none/);
    for (const [repository, tag] of [["base", "1.0-p0"], ["app", "1.0-p2"]] as const) expect(await registry.manifest(`${stack.group}/${repository}`, tag), `${repository}:${tag}`).toBeUndefined();
  });
});
