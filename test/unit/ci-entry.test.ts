/**
 * .ci/run is the CI run: it says so (CI=true) to the suite it starts, whatever the caller's
 * environment holds, so a missing golden file fails there instead of being written and passed.
 * Run as CI runs it, from a copy whose scripts/test.sh only reports what it was given.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../helpers/catalog.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe(".ci/run", () => {
  it.each([["unset", undefined], ["empty", ""], ["false", "false"]])("tells the suite it is CI when the caller's CI is %s", (_, callerCi) => {
    const copy = scratchDir("ci-run");
    mkdirSync(path.join(copy, ".ci"));
    mkdirSync(path.join(copy, "scripts"));
    copyFileSync(path.join(repoRoot, ".ci/run"), path.join(copy, ".ci/run"));
    writeFileSync(path.join(copy, "scripts/test.sh"), 'printf "CI=%s args=%s\\n" "${CI-unset}" "$*"\n');
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.CI;
    if (callerCi !== undefined) env.CI = callerCi;
    const run = spawnSync("bash", [path.join(copy, ".ci/run")], { env, encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe("CI=true args=all\n");
  });
});
