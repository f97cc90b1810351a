#!/usr/bin/env node
// The npm bin: runs the compiled CLI (npm run build, or scripts/bootstrap.sh, compiles it).
import { runCli } from "../dist/src/cli/commands.js";

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
