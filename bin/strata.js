#!/usr/bin/env node
// The npm bin: runs the compiled CLI (npm run build, or scripts/bootstrap.sh, compiles it).
import { constants } from "node:os";
import { runCli } from "../dist/src/cli/commands.js";
import { interruptedBy } from "../dist/src/engine/interruption.js";

// A reader of the output that went away (`strata up | tee log`, ended by the Ctrl-C that also
// reached strata) must not end strata while its engine closes: a write to it fails with EPIPE, and
// what strata says from then on goes nowhere. Any other write error ends it, as it would anyway.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code !== "EPIPE") throw error;
  });
}

let code = 1;
try {
  code = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  readStdin: async () => {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return Buffer.concat(chunks).toString("utf8");
  },
  });
} catch (error) {
  // Interrupted, strata still ends by the signal below, whatever failed after it; otherwise as before.
  if (interruptedBy() === undefined) throw error;
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
}
process.exitCode = code;
// Interrupted (Ctrl-C, SIGTERM) while its engine ran, strata waited for the engine to close (cli-run.ts
// passSignalsOn), or while ci-clean deleted, for the delete in flight (stack-lock.ts withStackLock), and ends now by the same signal, its listeners gone, as a shell expects of a command
// it interrupted (exit status 130 or 143; a `for` loop stops), its output written (synchronous on Linux).
const signal = interruptedBy();
if (signal !== undefined) {
  process.exitCode = 128 + constants.signals[signal]; // should a listener somewhere keep it alive
  process.kill(process.pid, signal);
}
