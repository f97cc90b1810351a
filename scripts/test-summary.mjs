// Reads vitest's JSON reports and prints the suite's closing line: "tests: N passed, N failed, N skipped".
// Exit 1 when a suite that ran left no report, when a test was skipped that the allowed-skips file
// does not list with a reason.
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
const unexplained = [];
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
  for (const testFile of report.testResults) {
    for (const test of testFile.assertionResults) {
      if (!["skipped", "pending", "todo"].includes(test.status)) continue;
      skipped += 1;
      if (allowed.has(test.fullName)) console.error(`[strata] skipped (allowed: ${allowed.get(test.fullName)}): ${test.fullName}`);
      else unexplained.push(test.fullName);
    }
  }
}
for (const name of unexplained) console.error(`[strata] error: skipped, and not in ${allowedFile} with a reason: ${name}`);
if (unexplained.length > 0) process.exitCode = 1;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
