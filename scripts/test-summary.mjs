// Reads vitest's JSON reports and prints the suite's closing line:
//   "tests: N passed, N failed, N skipped; N files failed outside a test (at import or in a hook)".
// A file that fails to import, or whose beforeAll/afterAll fails, fails no test (its tests are
// skipped or never collected): it is counted apart, named with its error, and fails the run.
// Exit 1 when a test or a file failed, when a suite that ran left no report, when a test was
// skipped that the allowed-skips file does not list with a reason.
// Usage: node test-summary.mjs <results dir> <unit|e2e|all> <allowed-skips file>
import { existsSync, readFileSync } from "node:fs";

const [resultsDir, what, allowedFile] = process.argv.slice(2);
const suites = what === "all" ? ["unit", "e2e"] : [what];
/** "<full test name> -- <reason>" per line; # starts a comment. */
const allowed = new Map();
if (existsSync(allowedFile)) {
  for (const line of readFileSync(allowedFile, "utf8").split("\n")) {
    const text = line.trim();
    if (text === "" || text.startsWith("#")) continue;
    const [name, reason] = text.split(" -- ");
    if (reason === undefined || reason.trim() === "") {
      console.error(`[strata] error: ${allowedFile}: "${text}" gives no reason (write: <test name> -- <reason>)`);
      process.exitCode = 1;
      continue;
    }
    allowed.set(name.trim(), reason.trim());
  }
}
let passed = 0, failed = 0, skipped = 0;
/** Files that failed outside their tests: "<suite>: <file>: <first line of the error>". */
const brokenFiles = [];
const unexplained = [];
const firstLine = (text) => (text ?? "").split("\n").find((line) => line.trim() !== "")?.trim() ?? "";
for (const suite of suites) {
  const file = `${resultsDir}/${suite}.json`;
  if (!existsSync(file)) {
    console.error(`[strata] error: the ${suite} suite left no report (${file}): it did not run to the end`);
    process.exitCode = 1;
    continue;
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  const brokenBefore = brokenFiles.length;
  for (const testFile of report.testResults) {
    const tests = testFile.assertionResults ?? [];
    const failedTests = tests.filter((test) => test.status === "failed").length;
    // vitest marks a file failed, with the error as its message, when it fails at import or in a
    // hook; its tests then did not fail (they never ran), so numFailedTests leaves it out.
    const broken = failedTests === 0 && (testFile.status === "failed" || (testFile.message ?? "") !== "");
    // A describe block's failing hook leaves the file failed with no message, and its tests skipped.
    const notRun = tests.filter((test) => test.status !== "passed").length;
    const why = firstLine(testFile.message) || `a hook or a describe block failed (${notRun} of its ${tests.length} tests did not run); the error is in vitest's output above`;
    if (broken) brokenFiles.push(`${suite}: ${testFile.name}: ${why}`);
    for (const test of tests) {
      if (!["skipped", "pending", "todo"].includes(test.status)) continue;
      skipped += 1;
      if (allowed.has(test.fullName)) console.error(`[strata] skipped (allowed: ${allowed.get(test.fullName)}): ${test.fullName}`);
      else if (!broken) unexplained.push(test.fullName);
    }
  }
  // vitest's own verdict covers what a file's entry may not show (a suite's hook): it is never overruled.
  if (report.success === false && report.numFailedTests === 0 && brokenFiles.length === brokenBefore) {
    brokenFiles.push(`${suite}: vitest reports the run failed though no test and no file did (a suite or hook failed): see its output above`);
  }
}
for (const name of unexplained) console.error(`[strata] error: skipped, and not in ${allowedFile} with a reason: ${name}`);
for (const broken of brokenFiles) console.error(`[strata] error: failed outside a test: ${broken}`);
if (unexplained.length > 0 || failed > 0 || brokenFiles.length > 0) process.exitCode = 1;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped; ${brokenFiles.length} ${brokenFiles.length === 1 ? "file" : "files"} failed outside a test (at import or in a hook)`);
