#!/usr/bin/env node
// The npm bin: runs the compiled CLI (npm run build, or scripts/bootstrap.sh, compiles it).
import { runCli } from "../dist/src/cli/commands.js";

// A reader of the output that went away (`strata up | tee log`, ended by the Ctrl-C that also
// reached strata) must not end strata while its engine closes: a write to it fails with EPIPE, and
// what strata says from then on goes nowhere. Any other write error ends it, as it would anyway.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code !== "EPIPE") throw error;
  });
}

const code = await runCli(process.argv.slice(2), {
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
process.exitCode = code;
