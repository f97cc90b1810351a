/**
 * The report page's checks (report-page.ts) see what a person sees: a report rendered from a run's
 * data passes them, and each way a page can look fine to the DOM yet show nothing, or show it out
 * of sight, is caught: styles gone, a page drawn invisible, every result in one colour, the
 * critical chain unmarked, the log link in a last column at 1400 px. No Pulumi run: the data is
 * made here, so this is quick; report.test.ts runs the same checks on a real run's report.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import path from "node:path";
import { type Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { reportData, renderReport } from "../../src/cli/report.js";
import { type SummaryRow } from "../../src/cli/summary.js";
import { type LayerEvent } from "../../src/engine/events.js";
import { closeChromium, launchChromium, reportPageProblems } from "./report-page.js";

const T0 = Date.parse("2026-11-30T12:00:00Z");
const GROUP = "127.0.0.1:5000/e2e-report-k3x9q2-mos9.0-seen";
const IMAGES: Record<string, string> = { base: "base", tools: "base-tools", db: "base-tools-db", libs: "base-tools-libs", "app-base": "base-tools-libs-app-base", app: "base-tools-libs-app" };
const row = (layer: string, result: SummaryRow["result"], detail = ""): SummaryRow => ({
  layer, image: IMAGES[layer] as string, result, ref: `${GROUP}/${IMAGES[layer] as string}:1.0-p0`,
  digest: result === "skipped" || result === "failed" ? null : `sha256:${layer.replace(/-/g, "").padEnd(64, "0")}`, detail, timing: null,
});
const timing = (start: number, build: number, push: number | undefined, end: number) => ({ startedAt: T0 + start, buildStartedAt: T0 + build, ...(push === undefined ? {} : { pushStartedAt: T0 + push }), finishedAt: T0 + end });
const event = (layer: string, change: Partial<LayerEvent>): LayerEvent => ({ layer, type: "docker:index/image:Image", op: "create", failed: false, ...change });

/** The shape of report.test.ts's run: four layers built, one failed, its subtree skipped. */
const html = renderReport(reportData({
  stack: "seen", channelStack: "seen", runId: "2026-11-30T12-00-00-000Z", startedAt: T0, finishedAt: T0 + 9000, ok: false,
  rows: [row("base", "built"), row("tools", "built"), row("db", "built"), row("libs", "failed", "error building image: exit code: 1: RUN echo 'report test failure' >&2 && false && cat /etc/strata"), row("app-base", "skipped", "parent libs failed"), row("app", "skipped", "parent libs failed")],
  parents: new Map([["base", null], ["tools", "base"], ["db", "tools"], ["libs", "tools"], ["app-base", "libs"], ["app", "app-base"]]),
  events: new Map([
    ["base", event("base", { timing: timing(200, 300, 1800, 2500) })],
    ["tools", event("tools", { timing: timing(2600, 2700, 4200, 5000) })],
    ["db", event("db", { timing: timing(5100, 5200, 6500, 7000) })],
    ["libs", event("libs", { failed: true, timing: timing(5100, 5300, undefined, 8600) })],
  ]),
  stackLayers: new Map(["base", "tools", "db"].map((layer) => [layer, { fingerprint: `sha256:f${layer.padEnd(63, "1")}` }])),
  logs: new Map(["base", "tools", "db", "libs"].map((layer) => [layer, `${layer}.log`])),
}));

let browser: Browser;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "strata-report-page-"));
  browser = await launchChromium();
});
afterAll(async () => {
  if (browser !== undefined) await closeChromium(browser);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** The problems the checks find on the report changed by `change` (extra CSS, or a script run after load). */
async function problemsOf(name: string, change: { css?: string; script?: string; html?: (text: string) => string } = {}): Promise<string[]> {
  let text = change.html === undefined ? html : change.html(html);
  if (change.css !== undefined) text = text.replace("</style>", `${change.css}\n</style>`);
  if (change.script !== undefined) text = text.replace("</body>", `<script>${change.script}</script>\n</body>`);
  const file = path.join(dir, `${name}.html`);
  writeFileSync(file, text);
  const page = await browser.newPage();
  try {
    await page.goto(`file://${file}`, { waitUntil: "load" });
    return await reportPageProblems(browser, page);
  } finally {
    await page.close();
  }
}

describe("the report page's checks see what a person sees", () => {
  it("the report as rendered passes: names, results and log links in view at 1400 px, bars drawn, results coloured, the chain marked", async () => {
    expect(await problemsOf("as-rendered")).toEqual([]);
  });

  it("a page with its styles gone: bars without width or colour, the chain unmarked", async () => {
    const problems = await problemsOf("no-styles", { html: (text) => text.replace(/<style>[\s\S]*?<\/style>/, "") });
    expect(problems).toContainEqual(expect.stringMatching(/^tools: its build segment has no width$/));
    expect(problems).toContainEqual(expect.stringMatching(/^tools: its build segment has no colour$/));
    expect(problems).toContainEqual(expect.stringMatching(/^tools: on the critical path, but its bar is not outlined$/));
    expect(problems).toContainEqual(expect.stringMatching(/^tools: on the critical path, but its name is not bold/));
  });

  it("a page whose DOM and styles are sound but that draws nothing: the screenshot is blank", async () => {
    const problems = await problemsOf("invisible", { css: "body{opacity:0}" });
    expect(problems.slice(0, 2)).toEqual(["the screenshot is blank: one colour covers 100.0 % of it", "the screenshot has only 1 colours"]);
    // Only the pixels tell: every check on the DOM and its computed styles passes on this page.
    expect(problems.slice(2).sort()).toEqual([
      "the built badge: its colour (46,125,50) is not on the screenshot (0 pixels)",
      "the failed badge: its colour (198,40,40) is not on the screenshot (0 pixels)",
      "the skipped badge: its colour (239,108,0) is not on the screenshot (0 pixels)",
      "the pull segment: its colour (144,202,249) is not on the screenshot (0 pixels)",
      "the build segment: its colour (67,160,71) is not on the screenshot (0 pixels)",
      "the push segment: its colour (255,179,0) is not on the screenshot (0 pixels)",
    ].sort());
  });

  it("every result in one colour", async () => {
    expect(await problemsOf("one-colour", { css: ".badge{background:#9e9e9e !important}" })).toEqual(expect.arrayContaining([expect.stringMatching(/^results built and failed share the colour rgb\(158, 158, 158\)$/)]));
  });

  it("the critical chain marked on the wrong rows, or named otherwise in the header", async () => {
    const problems = await problemsOf("chain", { css: ".track.critical{outline:none} tr.layer[data-layer=db] .track{outline:2px solid red}", script: 'document.getElementById("critical").textContent = "base → tools";' });
    expect(problems).toEqual(expect.arrayContaining([
      'the header names the critical path "base → tools", the rows mark base → tools → libs',
      "libs: on the critical path, but its bar is not outlined",
      "db: not on the critical path, but its bar is outlined",
    ]));
  });

  it("the log link in a last column, as it was: out of view at 1400 px", async () => {
    // The layout before the link moved by the name: a last column of log links.
    const script = 'document.querySelector("thead tr").insertAdjacentHTML("beforeend", "<th>log</th>"); document.querySelectorAll("tr.layer").forEach(function (row) { var cell = row.insertCell(-1); var link = row.querySelector("a.log"); if (link) cell.appendChild(link); });';
    const problems = await problemsOf("log-last", { script });
    expect(problems).toContainEqual(expect.stringMatching(/^libs: its log link is out of view at 1400 px \(\d+-\d+; the page is \d+ px wide\)$/));
  });
});

describe("the tests' browser", () => {
  it("starts when the environment's D-Bus sockets accept and never answer, and never opens them", async () => {
    // A bus that takes the connection and says nothing: Chromium, left to it, connects to it, and
    // its start (the session bus) or its shutdown (the system bus) hangs. launchChromium turns both off.
    let busConnections = 0;
    const deadBus = createServer(() => {
      busConnections += 1;
    });
    const socketPath = path.join(dir, "dead-bus.sock");
    await new Promise<void>((resolve) => deadBus.listen(socketPath, resolve));
    vi.stubEnv("DBUS_SESSION_BUS_ADDRESS", `unix:path=${socketPath}`);
    vi.stubEnv("DBUS_SYSTEM_BUS_ADDRESS", `unix:path=${socketPath}`);
    let second: Browser | undefined;
    try {
      second = await launchChromium();
      const page = await second.newPage();
      await page.goto("data:text/html,<p id=seen>opened</p>");
      expect(await page.$eval("#seen", (element) => element.textContent)).toBe("opened");
    } finally {
      if (second !== undefined) await closeChromium(second);
      vi.unstubAllEnvs();
      deadBus.close();
    }
    expect(busConnections, "the browser never opened the bus").toBe(0);
  });

  /** A stand-in browser: fails puppeteer's pipe launch at once; run alone, does what `alone` says after writing its arguments and group. */
  function fakeBrowser(name: string, alone: string): { file: string; seen: string } {
    const file = path.join(dir, name);
    const seen = path.join(dir, `${name}.seen`);
    writeFileSync(file, `#!/bin/sh
case "$*" in *--remote-debugging-pipe*) echo 'puppeteer launch refused' >&2; exit 1;; esac
echo "$* pgid=$(ps -o pgid= $$ | tr -d ' ')" > ${seen}
${alone}
`, { mode: 0o755 });
    return { file, seen };
  }

  it("a browser that cannot start: the error gives how it ends run alone and its stderr's end (D-Bus lines left out), not only puppeteer's \"Target closed\"", async () => {
    const broken = fakeBrowser("broken-chromium", `echo '[1:2:ERROR:dbus/bus.cc:405] Failed to connect to the bus' >&2
echo 'chromium: error while loading shared libraries: libstrata-missing.so.1: cannot open shared object file' >&2
exit 127`);
    const failure = await launchChromium(broken.file).then(() => "started", (error: unknown) => String(error));
    expect(failure).toMatch(/^Error: Chromium did not start for puppeteer \(.+\)\. Started alone with --dump-dom about:blank: exit 127; its stderr, D-Bus lines left out, ends:\nchromium: error while loading shared libraries: libstrata-missing\.so\.1[^\n]*$/s);
    expect(readFileSync(broken.seen, "utf8")).toMatch(/^--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --allow-file-access-from-files --dump-dom about:blank pgid=\d+\n$/);
  });

  it("a browser that hangs when run alone, a helper holding its stderr: killed after 30 s with its group, and the launch still fails with what it wrote", async () => {
    const hanging = fakeBrowser("hanging-chromium", `echo 'chromium: stuck before DevTools' >&2
sleep 300 &
echo $! > ${path.join(dir, "hanging-helper.pid")}
sleep 300`);
    const failure = await launchChromium(hanging.file).then(() => "started", (error: unknown) => String(error));
    expect(failure).toMatch(/Started alone with --dump-dom about:blank: no end within 30 s \(killed\); its stderr, D-Bus lines left out, ends:\nchromium: stuck before DevTools$/);
    const group = /pgid=(\d+)/.exec(readFileSync(hanging.seen, "utf8"))?.[1];
    const helper = readFileSync(path.join(dir, "hanging-helper.pid"), "utf8").trim();
    expect(group, "the browser run alone leads a process group of its own").not.toBe(String(process.pid));
    // Killed, it is gone or a zombie until its new parent reaps it.
    const state = existsSync(`/proc/${helper}/stat`) ? (/\) (\S)/.exec(readFileSync(`/proc/${helper}/stat`, "utf8"))?.[1] ?? "?") : "gone";
    expect(state, "the helper holding the browser's stderr was killed with its group").toMatch(/^(gone|Z)$/);
  });

  it("a path that is not an executable file is named, before anything is spawned", async () => {
    const notExecutable = path.join(dir, "not-executable");
    writeFileSync(notExecutable, "", { mode: 0o644 });
    for (const file of [notExecutable, dir, path.join(dir, "missing")]) {
      await expect(launchChromium(file)).rejects.toThrow(`no executable ${file}: Debian's chromium is installed by scripts/bootstrap.sh --test-tools`);
    }
  });
});
