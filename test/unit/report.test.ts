/**
 * The run report's data (not its pixels): rows in tree order with depth, result, reason, log and
 * timeline bar; the chain that held the run up; the total and the sum of steps. Plus the page's
 * structure a reader relies on, and the per-layer logs' pruning.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { criticalChain } from "../../src/core/graph.js";
import { type LayerEvent } from "../../src/engine/events.js";
import { builtHere, logText, pruneRuns, runIdOf, runIds, runsToPrune } from "../../src/engine/run-logs.js";
import { reportData, renderReport } from "../../src/cli/report.js";
import { type SummaryRow } from "../../src/cli/summary.js";
import { scratchDir } from "../helpers/catalog.js";

const T0 = Date.parse("2026-11-30T12:00:00Z");
const row = (layer: string, result: SummaryRow["result"], detail = ""): SummaryRow => ({ layer, image: `img-${layer}`, result, ref: `r/g/img-${layer}:1.0-p0`, digest: result === "skipped" || result === "failed" ? null : `sha256:${layer.padEnd(64, "0")}`, detail, timing: null });
const event = (layer: string, change: Partial<LayerEvent>): LayerEvent => ({ layer, type: "docker:index/image:Image", op: "update", failed: false, ...change });

const rows = [row("base", "unchanged"), row("tools", "built"), row("libs", "failed", "error reading build output: exit code: 1"), row("app", "skipped", "parent libs failed"), row("db", "built")];
const parents = new Map<string, string | null>([["base", null], ["tools", "base"], ["libs", "tools"], ["app", "libs"], ["db", "tools"]]);
const events = new Map<string, LayerEvent>([
  ["base", event("base", { op: "same" })],
  ["tools", event("tools", { changedInputs: ["build"], timing: { startedAt: T0 + 1000, buildStartedAt: T0 + 1500, pushStartedAt: T0 + 3000, finishedAt: T0 + 4000 }, log: [{ at: T0 + 1200, text: "Starting Docker build" }] })],
  ["libs", event("libs", { failed: true, timing: { startedAt: T0 + 4100, buildStartedAt: T0 + 4200, finishedAt: T0 + 6000 }, log: [{ at: T0 + 5000, text: "error: exit code: 1" }] })],
  ["db", event("db", { op: "create", timing: { startedAt: T0 + 4100, buildStartedAt: T0 + 4300, pushStartedAt: T0 + 5000, finishedAt: T0 + 5500 }, log: [{ at: T0 + 4400, text: "Step 1/2" }] })],
]);

describe("run report data", () => {
  const data = reportData({
    stack: "dev", channelStack: "dev", runId: runIdOf(new Date(T0)), startedAt: T0, finishedAt: T0 + 6500, ok: false, rows, parents, events,
    stackLayers: new Map([["tools", { fingerprint: "sha256:f-tools" }]]), logs: new Map([["tools", "tools.log"], ["libs", "libs.log"], ["db", "db.log"]]),
  });

  it("pins every layer's row: depth, result, reason, log, bar, critical path", () => {
    expect(data.layers.map((layer) => [layer.layer, layer.depth, layer.result, layer.reason, layer.log, layer.critical])).toEqual([
      ["base", 0, "unchanged", "same inputs as the stack's last run", null, false],
      ["tools", 1, "built", "its build inputs changed: its content, build arguments or parent's digest", "tools.log", true],
      ["libs", 2, "failed", "error reading build output: exit code: 1", "libs.log", true],
      ["app", 3, "skipped", "parent libs failed", null, false],
      ["db", 2, "built", "not built in this stack before", "db.log", false],
    ]);
    expect(data.layers[1]?.bar).toEqual({ start: 1000, buildStart: 1500, pushStart: 3000, end: 4000 });
    expect(data.layers[1]?.fingerprint).toBe("sha256:f-tools");
    expect(data.layers[0]?.bar).toBeUndefined();
  });
  it("the run's total (wall clock) and its steps added up; the counts", () => {
    expect(data.totalSeconds).toBe(6.5);
    expect(data.stepSeconds).toBe(6.3);
    expect(data.counts).toEqual({ unchanged: 1, built: 2, failed: 1, skipped: 1 });
    expect(data.runId).toBe("2026-11-30T12-00-00-000Z");
  });
  it("renders one row per layer, marked by result, with its log link, and no external resource", () => {
    const html = renderReport(data);
    expect(html.match(/<tr class="layer /g)).toHaveLength(5);
    expect(html).toContain('<tr class="layer result-failed on-critical-path" data-layer="libs" data-parent="tools" data-result="failed">');
    expect(html).toContain('data-layer="app" data-parent="libs" data-result="skipped"');
    // Each log link sits in its layer's name cell (a last column scrolls out of sight at 1400 px), and nowhere else.
    expect(html).toMatch(/<td class="name"[^>]*><button class="toggle" aria-label="collapse tools">▾<\/button>tools <a class="log" href="tools\.log" title="the build output of tools">log<\/a><\/td>/);
    expect(html).toMatch(/<td class="name"[^>]*><span class="leaf"><\/span>db <a class="log" href="db\.log" [^>]*>log<\/a><\/td>/);
    expect(html.match(/<a class="log"/g)).toHaveLength(3);
    expect(html).not.toContain("<th>log</th>");
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?https?:/);
    expect(html).toContain("critical path: <b id=\"critical\">tools → libs</b>");
  });
});

describe("critical chain", () => {
  it("follows the last layer to finish up through the parents that did work", () => {
    const layers = [{ name: "a" }, { name: "b", parent: "a" }, { name: "c", parent: "b" }, { name: "d", parent: "a" }];
    expect(criticalChain(layers, new Map([["b", 5], ["c", 9], ["d", 7]]))).toEqual(["b", "c"]);
    expect(criticalChain(layers, new Map([["a", 1], ["b", 5], ["d", 7]]))).toEqual(["a", "d"]);
    expect(criticalChain(layers, new Map())).toEqual([]);
  });
});

describe("per-layer logs", () => {
  it("only a layer built (or failed building) in the run has a log; lines carry their time", () => {
    expect(builtHere(events.get("tools") as LayerEvent)).toBe(true);
    expect(builtHere(events.get("base") as LayerEvent)).toBe(false);
    expect(builtHere(event("x", { type: "strata:index:CopiedImage", op: "create", log: [{ at: T0, text: "copied" }] }))).toBe(false);
    expect(logText(events.get("tools") as LayerEvent)).toBe("2026-11-30T12:00:01.200Z  Starting Docker build\n");
  });
  it("keeps the newest runs of a stack and removes the rest", () => {
    expect(runsToPrune(["2026-11-30T12-00-03-000Z", "2026-11-30T12-00-01-000Z", "2026-11-30T12-00-02-000Z"], 2)).toEqual(["2026-11-30T12-00-01-000Z"]);
    const dir = scratchDir("logs");
    for (let second = 0; second < 23; second++) mkdirSync(path.join(dir, runIdOf(new Date(T0 + second * 1000))));
    expect(pruneRuns(dir, 20)).toHaveLength(3);
    expect(runIds(dir)).toHaveLength(20);
    expect(runIds(dir)[0]).toBe(runIdOf(new Date(T0 + 3000)));
  });
});
