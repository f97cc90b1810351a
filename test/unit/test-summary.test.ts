/**
 * scripts/test-summary.mjs, the suite's closing line, on reports of real vitest runs made here in
 * a temp folder: a file that fails at import, one whose beforeAll fails (its tests are skipped,
 * none fails) and one whose afterAll fails after its test passed are each counted and named, and
 * fail the run; a clean run says so and passes.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let dir: string;

const FILES: Record<string, string> = {
  "passes.test.mjs": 'it("passes", () => {});\n',
  "import-fails.test.mjs": 'import "./no-such-module.mjs";\nit("never collected", () => {});\n',
  "before-all-fails.test.mjs": 'describe("a suite", () => {\n  beforeAll(() => { throw new Error("beforeAll broke"); });\n  it("first", () => {});\n  it("second", () => {});\n});\n',
  "after-all-fails.test.mjs": 'afterAll(() => { throw new Error("afterAll broke"); });\nit("passes before the hook fails", () => {});\n',
};

/** Runs the installed vitest on `files` of the temp project, then the summary on its JSON report. */
function runAndSummarise(name: string, files: readonly string[]): { vitest: number | null; code: number | null; out: string; err: string } {
  const results = path.join(dir, `results-${name}`);
  mkdirSync(results);
  // The outer vitest's worker variables would make the inner one think it is a worker.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST") && key !== "TEST" && key !== "NODE_OPTIONS"));
  const vitest = spawnSync(process.execPath, [path.join(repoRoot, "node_modules/vitest/vitest.mjs"), "run", "--root", dir, "--reporter=json", `--outputFile=${results}/unit.json`, ...files], { env, encoding: "utf8", timeout: 120_000 });
  const summary = spawnSync(process.execPath, [path.join(repoRoot, "scripts/test-summary.mjs"), results, "unit", path.join(dir, "allowed-skips.txt")], { encoding: "utf8" });
  if (summary.stdout === "") throw new Error(`no closing line; vitest said:\n${vitest.stdout}\n${vitest.stderr}\nsummary said:\n${summary.stderr}`);
  return { vitest: vitest.status, code: summary.status, out: summary.stdout, err: summary.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "strata-test-summary-"));
  writeFileSync(path.join(dir, "vitest.config.mjs"), "export default { test: { globals: true, include: ['*.test.mjs'] } };\n");
  writeFileSync(path.join(dir, "allowed-skips.txt"), "# none\n");
  for (const [file, text] of Object.entries(FILES)) writeFileSync(path.join(dir, file), text);
});
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("the suite's closing line (scripts/test-summary.mjs)", () => {
  it("counts and names files that fail at import or in a hook, and fails the run", { timeout: 120_000 }, () => {
    const run = runAndSummarise("broken", Object.keys(FILES));
    expect(run.vitest).not.toBe(0);
    expect(run.out).toBe("tests: 2 passed, 0 failed, 2 skipped; 3 files failed outside a test (at import or in a hook)\n");
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/failed outside a test: unit: \S*import-fails\.test\.mjs: Cannot find module '\.\/no-such-module\.mjs'/);
    expect(run.err).toMatch(/failed outside a test: unit: \S*before-all-fails\.test\.mjs: a hook or a describe block failed \(2 of its 2 tests did not run\); the error is in vitest's output above$/m);
    expect(run.err).toMatch(/failed outside a test: unit: \S*after-all-fails\.test\.mjs: afterAll broke$/m);
  });

  it("files failing at import and in afterAll, with no test failed or skipped, still fail the run", { timeout: 120_000 }, () => {
    const run = runAndSummarise("no-skips", ["passes.test.mjs", "import-fails.test.mjs", "after-all-fails.test.mjs"]);
    expect(run.out).toBe("tests: 2 passed, 0 failed, 0 skipped; 2 files failed outside a test (at import or in a hook)\n");
    expect(run.code).toBe(1);
  });

  it("a clean run: nothing failed, exit 0", { timeout: 120_000 }, () => {
    const run = runAndSummarise("clean", ["passes.test.mjs"]);
    expect(run.vitest).toBe(0);
    expect(run.out).toBe("tests: 1 passed, 0 failed, 0 skipped; 0 files failed outside a test (at import or in a hook)\n");
    expect(run.code).toBe(0);
  });
});
