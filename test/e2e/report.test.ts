/**
 * A run seen as a person would: `strata up` on the fixture tree with one layer made to fail, then
 * its report opened in headless Chromium (Debian's chromium, installed by bootstrap --test-tools):
 * no console errors, a row per layer, the failed layer and its skipped subtree marked, a log link
 * that resolves to that layer's build output, collapse and filter working; what a person sees at
 * 1400 px checked from computed styles and the screenshot's pixels (report-page.ts), the
 * screenshot kept in the test output. The per-layer logs: one per built layer, none for the others.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type E2eWorld, runStrata, upWithSummary } from "./harness.js";
import { closeChromium, LAPTOP, launchChromium, reportPageProblems } from "./report-page.js";

let world: E2eWorld;
let browser: Browser | undefined;
beforeAll(() => {
  world = createWorld("report");
});
afterAll(async () => {
  if (browser !== undefined) await closeChromium(browser);
  await world?.cleanup();
});

describe("the run report and per-layer logs", () => {
  it("a run with a failing layer: logs for built layers, a report that opens offline and shows the run", async () => {
    await world.stack("seen", { channel: "seen" });
    const dockerfile = path.join(world.catalogDir, "libs/Dockerfile");
    const original = readFileSync(dockerfile, "utf8");
    writeFileSync(dockerfile, original.replace("RUN cat", "RUN echo 'report test failure' >&2 && false && cat"));
    const run = await upWithSummary(world, "seen", "seen-summary").finally(() => writeFileSync(dockerfile, original));
    expect(run.code).toBe(1);
    expect(run.results, run.out).toEqual({ base: "built", tools: "built", db: "built", libs: "failed", "app-base": "skipped", app: "skipped" });

    // Per-layer logs: one per layer built (or failing) in this run, named in the summary, its JSON and the failure message.
    const report = /^report: (\S+)/m.exec(run.out)?.[1] as string;
    expect(report).toMatch(new RegExp(`${world.projectDir}/\\.strata/logs/seen/\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z/report\\.html$`));
    const runDir = path.dirname(report);
    expect(readdirSync(runDir).sort()).toEqual(["base.log", "db.log", "libs.log", "report.html", "report.json", "tools.log"]);
    const logs = Object.fromEntries(run.summary.layers.map((layer) => [layer.layer, layer.log ?? null]));
    expect(logs).toEqual({ base: `${runDir}/base.log`, tools: `${runDir}/tools.log`, db: `${runDir}/db.log`, libs: `${runDir}/libs.log`, "app-base": null, app: null });
    expect(run.out).toMatch(/libs\s+failed\s.*libs\.log/);
    expect(run.out).toContain(`(its whole log: ${runDir}/libs.log)`);
    const libsLog = readFileSync(`${runDir}/libs.log`, "utf8");
    expect(libsLog).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}/);
    expect(libsLog).toContain("report test failure");
    expect(readFileSync(`${runDir}/tools.log`, "utf8")).toMatch(/RUN (sleep \d+ && )?cat/);

    // The page, as a person opens it: a file, offline.
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.setViewport(LAPTOP);
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${String(error)}`));
    page.on("request", (request) => {
      if (!request.url().startsWith("file://")) problems.push(`network: ${request.url()}`);
    });
    await page.goto(`file://${report}`, { waitUntil: "load" });
    const shown = await page.$$eval("tr.layer", (rows) => rows.map((row) => ({ layer: (row as HTMLElement).dataset.layer, result: (row as HTMLElement).dataset.result, classes: row.className })));
    expect(shown.map((row) => [row.layer, row.result])).toEqual([["base", "built"], ["tools", "built"], ["db", "built"], ["libs", "failed"], ["app-base", "skipped"], ["app", "skipped"]]);
    expect(shown.find((row) => row.layer === "libs")?.classes).toContain("result-failed");
    expect(shown.filter((row) => row.classes.includes("result-skipped")).map((row) => row.layer)).toEqual(["app-base", "app"]);
    expect(await page.$eval("#total", (element) => element.textContent)).toMatch(/^\d+\.\d s$/);
    expect(await page.$$eval("tr.layer .track", (tracks) => tracks.length)).toBeGreaterThanOrEqual(4);
    // What a person sees at 1400 px, from computed styles and the screenshot's pixels (report-page.ts):
    // names, results and log links in view, bars drawn, a colour per result, the critical chain marked.
    const screenshots = process.env.STRATA_TEST_OUTPUT ?? world.root;
    mkdirSync(screenshots, { recursive: true });
    expect(await reportPageProblems(browser, page, (png) => writeFileSync(path.join(screenshots, "report.png"), png))).toEqual([]);
    const chain = await page.$$eval("tr.layer.on-critical-path", (rows) => rows.map((row) => (row as HTMLElement).dataset.layer));
    expect(chain.at(-1), "the chain ends at the layer that finished last, the failing libs or the db built beside it").toMatch(/^(libs|db)$/);
    expect(chain.slice(0, -1)).toEqual(["base", "tools"]);

    // Collapse a subtree, then filter by result.
    await page.click('tr.layer[data-layer="tools"] button.toggle');
    const hiddenAfterCollapse = await page.$$eval("tr.layer.hidden", (rows) => rows.map((row) => (row as HTMLElement).dataset.layer));
    expect(hiddenAfterCollapse).toEqual(["db", "libs", "app-base", "app"]);
    await page.click('tr.layer[data-layer="tools"] button.toggle');
    await page.click('input.filter[value="built"]');
    expect(await page.$$eval("tr.layer:not(.hidden)", (rows) => rows.map((row) => (row as HTMLElement).dataset.layer))).toEqual(["libs", "app-base", "app"]);

    // The failed layer's log link resolves to its log.
    const href = await page.$eval('tr.layer[data-layer="libs"] a.log', (link) => (link as HTMLAnchorElement).href);
    expect(fileURLToPath(href)).toBe(`${runDir}/libs.log`);
    await page.goto(href);
    expect(await page.$eval("body", (body) => body.textContent ?? "")).toContain("report test failure");
    expect(problems).toEqual([]);

    // strata report renders it again and prints where.
    const again = await runStrata(world, ["report", "--stack", "seen"]);
    expect(again.code, again.out).toBe(0);
    expect(again.out.trim()).toBe(report);
    const unknown = await runStrata(world, ["report", "--stack", "seen", "--run", "no-such-run"]);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/no run no-such-run of stack seen is recorded here.*fix: name one of/s);
  });
});
