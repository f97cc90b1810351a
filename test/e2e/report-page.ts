/**
 * What a person sees of a run report in Chromium, checked from the rendered page rather than its
 * markup: at a laptop's 1400 px each layer's name, result and log link are in view without
 * scrolling sideways; every timeline segment has width and a colour; each result has a colour of
 * its own; the critical chain is marked (outlined bar, bold name) on exactly its rows and named
 * in order; and the screenshot itself is neither blank nor one colour, with every result's colour
 * and the build segments' colour on it. `reportPageProblems` lists what fails, so a test can also
 * show it catches a blank page (report-page.test.ts).
 */
import { accessSync, constants, statSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { killGroup, startInGroup } from "../helpers/process-group.js";
import { within } from "../helpers/within.js";

/** The viewport the report must work at: a laptop's screen. */
export const LAPTOP = { width: 1400, height: 900 } as const;

/** Debian's chromium binary itself (installed by scripts/bootstrap.sh --test-tools), not its shell wrapper. */
export const CHROMIUM = "/usr/lib/chromium/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--allow-file-access-from-files"];
/** Chromium never opens a D-Bus whose address is "disabled:": libdbus refuses the address at once. */
const NO_BUS = { DBUS_SESSION_BUS_ADDRESS: "disabled:", DBUS_SYSTEM_BUS_ADDRESS: "disabled:" };
const LAUNCH_MS = 120_000;

/** A file this process may run (a path that exists is not enough: puppeteer's spawn error would go uncaught). */
function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Chromium run once on its own, for the error: how it ended and its stderr's last lines. In its
 * own process group, the group killed when Chromium ends or after 30 s, then its stderr read for
 * up to 2 s more and let go: a hung Chromium's helpers hold that pipe open (one in a session of its
 * own, as crashpad's handler is, outlives the group), so waiting for it to close (or a synchronous
 * spawn's timeout) would hang.
 */
async function startAlone(executablePath: string, env: NodeJS.ProcessEnv): Promise<{ ended: string; stderrEnd: string }> {
  const run = startInGroup(executablePath, ["--headless", ...CHROMIUM_ARGS, "--dump-dom", "about:blank"], { env, read: "stderr", keepChars: 64_000 });
  const status = await within(run.ended, 30_000, "hung" as const);
  run.killGroup("SIGKILL");
  // A leader SIGKILL cannot end (stuck in the kernel) must not hold the error back.
  await within(run.exited, 5_000, undefined);
  run.release();
  const ended = status === "hung" ? "no end within 30 s (killed)" : status instanceof Error ? String(status) : typeof status === "number" ? `exit ${status}` : `killed by ${status}`;
  const stderrEnd = run.output().split("\n").filter((line) => line.trim() !== "" && !line.includes("dbus/")).slice(-12).join("\n");
  return { ended, stderrEnd };
}

/**
 * Headless Chromium for the report's tests. A CI run once failed here: no DevTools URL on stderr
 * within puppeteer's 30 s, for a reason that run did not record. So the launch leaves out what
 * could hold it and says why when it fails:
 * - the binary itself, not Debian's /usr/bin/chromium wrapper (which on this machine errs on its
 *   /dev/shm test and so never adds --disable-dev-shm-usage; it is passed here);
 * - the D-Bus buses off: a session bus socket that accepts and never answers holds Chromium's
 *   start, a system bus one its shutdown (report-page.test.ts starts it beside such sockets);
 * - puppeteer on a pipe, not reading the DevTools URL from stderr, with two minutes both to start
 *   and for each protocol call (`protocolTimeout` bounds the handshake on a pipe);
 * - on failure, Chromium started once alone, its exit and the end of its stderr in the error (a
 *   pipe launch that fails reports only "Target closed").
 */
export async function launchChromium(executablePath = CHROMIUM): Promise<Browser> {
  if (!isExecutableFile(executablePath)) throw new Error(`no executable ${executablePath}: Debian's chromium is installed by scripts/bootstrap.sh --test-tools`);
  const env = { ...process.env, ...NO_BUS };
  // Aborting kills the browser's process group: puppeteer, when a launch fails, asks the browser to
  // close and waits a protocolTimeout more before it kills it, which would overlap the run alone.
  const launch = new AbortController();
  try {
    return await puppeteer.launch({ executablePath, headless: true, pipe: true, timeout: LAUNCH_MS, protocolTimeout: LAUNCH_MS, env, args: CHROMIUM_ARGS, signal: launch.signal });
  } catch (error) {
    launch.abort();
    const alone = await startAlone(executablePath, env);
    throw new Error(`Chromium did not start for puppeteer (${String(error)}). Started alone with --dump-dom about:blank: ${alone.ended}; its stderr, D-Bus lines left out, ends:\n${alone.stderrEnd}`, { cause: error });
  }
}

/**
 * Closes a browser launchChromium started, killing its process group when it has not closed within
 * 15 s: a Chromium that reached a D-Bus that never answers hangs at shutdown, and puppeteer's
 * close waits for it without a limit.
 */
export async function closeChromium(browser: Browser): Promise<void> {
  const closed = await within(browser.close().then(() => true), 15_000, false);
  if (!closed) killGroup(browser.process()?.pid);
}

interface Seen {
  readonly viewportWidth: number;
  readonly scrollWidth: number;
  readonly rows: readonly {
    layer: string; result: string; critical: boolean; hidden: boolean;
    name: { left: number; right: number; weight: number };
    badge: { right: number; background: string; colour: string } | null;
    log: { left: number; right: number; top: number; bottom: number; href: string } | null;
    track: { width: number; outlineStyle: string; outlineWidth: number } | null;
    segments: readonly { kind: string; width: number; background: string }[];
  }[];
  readonly criticalText: string;
}

/** Reads, in the page, where things are and how they are styled (a plain function: it runs in Chromium). */
function readPage(): Seen {
  const box = (element: Element) => element.getBoundingClientRect();
  const rows = Array.from(document.querySelectorAll("tr.layer")).map((row) => {
    const element = row as HTMLElement;
    const nameCell = element.querySelector("td.name") as HTMLElement;
    const badge = element.querySelector(".badge");
    const log = element.querySelector("a.log") as HTMLAnchorElement | null;
    const track = element.querySelector(".track");
    return {
      layer: element.dataset.layer ?? "",
      result: element.dataset.result ?? "",
      critical: element.classList.contains("on-critical-path"),
      hidden: getComputedStyle(element).display === "none",
      name: { left: box(nameCell).left, right: box(nameCell).right, weight: Number(getComputedStyle(nameCell).fontWeight) },
      badge: badge === null ? null : { right: box(badge).right, background: getComputedStyle(badge).backgroundColor, colour: getComputedStyle(badge).color },
      log: log === null ? null : { left: box(log).left, right: box(log).right, top: box(log).top, bottom: box(log).bottom, href: log.href },
      track: track === null ? null : { width: box(track).width, outlineStyle: getComputedStyle(track).outlineStyle, outlineWidth: parseFloat(getComputedStyle(track).outlineWidth) },
      segments: Array.from(element.querySelectorAll(".seg")).map((segment) => ({
        kind: Array.from(segment.classList).find((name) => name !== "seg") ?? "",
        width: box(segment).width,
        background: getComputedStyle(segment).backgroundColor,
      })),
    };
  });
  return { viewportWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, rows, criticalText: document.querySelector("#critical")?.textContent ?? "" };
}

const TRANSPARENT = new Set(["rgba(0, 0, 0, 0)", "transparent", ""]);

/** "rgb(198, 40, 40)" → [198, 40, 40]. */
function rgbOf(css: string): [number, number, number] | undefined {
  const match = /^rgba?\((\d+), (\d+), (\d+)/.exec(css);
  return match === null ? undefined : [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** The screenshot's pixels, counted in Chromium (a canvas decodes the PNG; no decoder of our own). */
interface PixelCount {
  readonly pixels: number;
  /** The most frequent colour's share of the pixels (the background's, on a page that shows something). */
  readonly commonestShare: number;
  readonly distinctColours: number;
  /** How many pixels have each asked-for colour exactly ("r,g,b"). */
  readonly exact: Readonly<Record<string, number>>;
}

async function countPixels(browser: Browser, png: Uint8Array, wanted: readonly string[]): Promise<PixelCount> {
  const page = await browser.newPage();
  try {
    const dataUrl = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
    return await page.evaluate(async (url: string, colours: string[]) => {
      const image = new Image();
      image.src = url;
      await image.decode();
      const canvas = document.createElement("canvas");
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext("2d") as CanvasRenderingContext2D;
      context.drawImage(image, 0, 0);
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const counts = new Map<number, number>();
      for (let index = 0; index < data.length; index += 4) {
        const key = ((data[index] as number) << 16) | ((data[index + 1] as number) << 8) | (data[index + 2] as number);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const pixels = data.length / 4;
      const exact: Record<string, number> = {};
      for (const colour of colours) {
        const [r, g, b] = colour.split(",").map(Number) as [number, number, number];
        exact[colour] = counts.get((r << 16) | (g << 8) | b) ?? 0;
      }
      return { pixels, commonestShare: Math.max(...counts.values()) / pixels, distinctColours: counts.size, exact };
    }, dataUrl, [...wanted]);
  } finally {
    await page.close();
  }
}

/**
 * Everything wrong with the report open in `page` as a person would see it, [] when nothing is.
 * Sets the viewport to LAPTOP and scrolls to the top left; `screenshot` is the PNG taken there.
 */
export async function reportPageProblems(browser: Browser, page: Page, screenshot?: (png: Uint8Array) => void): Promise<string[]> {
  await page.setViewport(LAPTOP);
  await page.evaluate(() => window.scrollTo(0, 0));
  const seen = await page.evaluate(readPage);
  const problems: string[] = [];
  const shown = seen.rows.filter((row) => !row.hidden);
  if (shown.length === 0) problems.push("no layer row is shown");

  // In view at 1400 px, without scrolling sideways: the name, the result and the log link.
  for (const row of shown) {
    if (row.name.left < 0 || row.name.right > seen.viewportWidth) problems.push(`${row.layer}: its name is out of view at ${seen.viewportWidth} px (${row.name.left}-${row.name.right})`);
    if (row.badge !== null && row.badge.right > seen.viewportWidth) problems.push(`${row.layer}: its result is out of view at ${seen.viewportWidth} px (right edge ${row.badge.right})`);
    if (row.log !== null && (row.log.left < 0 || row.log.right > seen.viewportWidth || row.log.bottom <= row.log.top)) {
      problems.push(`${row.layer}: its log link is out of view at ${seen.viewportWidth} px (${Math.round(row.log.left)}-${Math.round(row.log.right)}; the page is ${seen.scrollWidth} px wide)`);
    }
  }

  // Bars: every segment drawn has width and a colour; a bar per layer that did work.
  for (const row of shown) {
    if (row.track !== null && row.segments.length > 0 && row.track.width <= 0) problems.push(`${row.layer}: its timeline bar has no width`);
    for (const segment of row.segments) {
      if (!(segment.width > 0)) problems.push(`${row.layer}: its ${segment.kind} segment has no width`);
      if (TRANSPARENT.has(segment.background)) problems.push(`${row.layer}: its ${segment.kind} segment has no colour`);
    }
  }
  if (!shown.some((row) => row.segments.length > 0)) problems.push("no timeline bar is drawn");

  // Results: each result one colour, visible, and different from every other result's.
  const colourOf = new Map<string, string>();
  for (const row of shown) {
    if (row.badge === null) {
      problems.push(`${row.layer}: no result badge`);
      continue;
    }
    if (TRANSPARENT.has(row.badge.background) || row.badge.background === row.badge.colour) problems.push(`${row.layer}: its result badge is not visible (background ${row.badge.background}, text ${row.badge.colour})`);
    const known = colourOf.get(row.result);
    if (known !== undefined && known !== row.badge.background) problems.push(`result ${row.result} has two colours: ${known} and ${row.badge.background}`);
    colourOf.set(row.result, row.badge.background);
  }
  const results = [...colourOf.keys()];
  for (const [index, result] of results.entries()) {
    for (const other of results.slice(index + 1)) if (colourOf.get(result) === colourOf.get(other)) problems.push(`results ${result} and ${other} share the colour ${colourOf.get(result)}`);
  }

  // The critical chain: outlined bar and bold name on its rows only, named in order in the header.
  const chain = seen.rows.filter((row) => row.critical).map((row) => row.layer);
  if (chain.length > 0 && seen.criticalText !== chain.join(" → ")) problems.push(`the header names the critical path "${seen.criticalText}", the rows mark ${chain.join(" → ")}`);
  for (const row of shown) {
    const outlined = row.track !== null && row.track.outlineStyle !== "none" && row.track.outlineWidth > 0;
    if (row.critical && row.track !== null && !outlined) problems.push(`${row.layer}: on the critical path, but its bar is not outlined`);
    if (!row.critical && outlined) problems.push(`${row.layer}: not on the critical path, but its bar is outlined`);
    if (row.critical && row.name.weight < 600) problems.push(`${row.layer}: on the critical path, but its name is not bold (weight ${row.name.weight})`);
    if (!row.critical && row.name.weight >= 600) problems.push(`${row.layer}: not on the critical path, but its name is bold`);
  }

  // The screenshot: something is drawn, in more than one colour, and the colours above are on it.
  const png = await page.screenshot({ type: "png" });
  screenshot?.(png);
  const wanted = new Map<string, string>();
  for (const [result, css] of colourOf) {
    const rgb = rgbOf(css);
    if (rgb !== undefined) wanted.set(rgb.join(","), `the ${result} badge`);
  }
  for (const row of shown) {
    for (const segment of row.segments) {
      const rgb = rgbOf(segment.background);
      if (rgb !== undefined && segment.width >= 2) wanted.set(rgb.join(","), `the ${segment.kind} segment`);
    }
  }
  const pixels = await countPixels(browser, png, [...wanted.keys()]);
  if (pixels.commonestShare > 0.985) problems.push(`the screenshot is blank: one colour covers ${(pixels.commonestShare * 100).toFixed(1)} % of it`);
  if (pixels.distinctColours < 16) problems.push(`the screenshot has only ${pixels.distinctColours} colours`);
  for (const [colour, what] of wanted) if ((pixels.exact[colour] ?? 0) < 20) problems.push(`${what}: its colour (${colour}) is not on the screenshot (${pixels.exact[colour] ?? 0} pixels)`);
  return problems;
}
