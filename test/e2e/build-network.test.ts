/**
 * strata:buildNetwork reaches the engine's RUN steps, with either builder, and a change of it
 * rebuilds nothing. The app layer gets a RUN that passes only with no network interface but the
 * loopback (`none`): the same catalog fails on the engine's default network, so a setting that
 * went nowhere would fail the `none` runs; and after `host` is set on a stack that built with
 * `none`, a run that rebuilt the app would fail on the host's interfaces, so it must build nothing.
 */
import { appendFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type E2eWorld, upWithSummary } from "./harness.js";

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

  it("builds with no network (docker.Image), then builds nothing when the stack changes to host", async () => {
    const stack = await world.stack("none", { channel: "netnone", layers: "app", buildNetwork: "none" });
    const run = await upWithSummary(world, "none", "none");
    expect(run.code, run.out).toBe(0);
    expect(run.results.app, run.out).toBe("built");
    await stack.stack.setConfig("strata:buildNetwork", { value: "host" });
    const again = await upWithSummary(world, "none", "none-then-host");
    expect(again.code, again.out).toBe(0);
    expect(Object.values(again.results).filter((result) => result === "built"), again.out).toEqual([]);
  });

  it("builds with no network through Strata's own LayerImage", async () => {
    await world.stack("strata", { channel: "netstrata", layers: "app", buildNetwork: "none", builder: "strata" });
    const run = await upWithSummary(world, "strata", "strata-none");
    expect(run.code, run.out).toBe(0);
    expect(run.results.app, run.out).toBe("built");
  });

  it("refuses a network it does not know, naming the file, the field and the values", async () => {
    await world.stack("bridge", { channel: "netbridge", layers: "app", buildNetwork: "bridge" });
    const run = await upWithSummary(world, "bridge", "bridge").catch((error: unknown) => ({ code: 1, out: String(error), results: {} as Record<string, string> }));
    expect(run.code).not.toBe(0);
    expect(run.out).toMatch(/Pulumi\.bridge\.yaml/);
    expect(run.out).toMatch(/strata:buildNetwork/);
    expect(run.out).toMatch(/use one of default, host, none/);
    expect(Object.values(run.results).filter((result) => result === "built")).toEqual([]);
  });
});
