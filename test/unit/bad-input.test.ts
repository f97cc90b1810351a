/**
 * The bad-input corpus (test/corpus/bad): one folder per malformed catalog or
 * stack config, with the problems `strata validate` must report, all of them,
 * each naming the file, the field or line, and a fix. Nothing here builds.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/commands.js";

const corpus = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../corpus/bad");
const cases = readdirSync(corpus).sort();

interface Expected {
  readonly count: number;
  /** `fix`, when given, must be in the problem's fix line (a fix that leads to no other error). */
  readonly problems: readonly { file: string; field?: string; message: string; fix?: string }[];
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("bad input corpus", () => {
  it("has at least 30 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)("%s", async (name) => {
    const dir = path.join(corpus, name);
    const expected = JSON.parse(readFileSync(path.join(dir, "expect.json"), "utf8")) as Expected;
    const envFile = path.join(dir, "env.json");
    const env = existsSync(envFile) ? (JSON.parse(readFileSync(envFile, "utf8")) as Record<string, string>) : {};
    let out = "";
    let err = "";
    const code = await runCli(["validate", "--catalog", "catalog", "--config", "stack.yaml", "--project", "."], {
      out: (text) => (out += text), err: (text) => (err += text), env, cwd: dir,
    });
    expect(out).toBe("");
    expect(code).toBe(1);
    const header = expected.count === 1 ? "1 problem" : `${expected.count} problems`;
    expect(err.split("\n")[0]).toBe(`${header} in the Strata input (nothing was built or pushed):`);
    // Each problem: "<file>: <field>: <message>" then "    fix: <fix>".
    const lines = err.split("\n").slice(1).filter((line) => line !== "");
    expect(lines).toHaveLength(expected.count * 2);
    for (let index = 0; index < lines.length; index += 2) expect(lines[index + 1]).toMatch(/^ {4}fix: \S/);
    const problemLines = lines.filter((_, index) => index % 2 === 0);
    for (const problem of expected.problems) {
      const where = problem.field === undefined ? escape(problem.file) : `${escape(problem.file)}: ${problem.field}`;
      const pattern = new RegExp(`^${where}: .*${problem.message}`);
      const at = problemLines.findIndex((line) => pattern.test(line));
      expect(at, `no line matches ${pattern}:\n${problemLines.join("\n")}`).toBeGreaterThanOrEqual(0);
      if (problem.fix !== undefined) expect(lines[at * 2 + 1]).toContain(problem.fix);
    }
  });
});
