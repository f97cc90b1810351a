/**
 * A no-op `strata up` on Pulumi's PostgreSQL backend against the file
 * backend, in one run, on the same project and the same state: one cold
 * build of N layers on the file backend, its checkpoint imported into the
 * PostgreSQL backend (`pulumi stack import`), then no-ops taking turns.
 * Needs the cluster of `STRATA_BACKEND=postgres scripts/services.sh start`
 * (scripts/bench.sh backends starts it). Prints the medians and writes JSON.
 *   node dist/bench/backends.js [--size 200] [--repeats 5] [--out FILE]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { removeImages } from "./docker-images.js";
import { generateCatalog } from "./generate.js";
import { median, projectRoot } from "./stats.js";
import { StrataSide } from "./strata-side.js";

const { values } = parseArgs({ options: { size: { type: "string", default: "200" }, repeats: { type: "string", default: "5" }, out: { type: "string" } } });
const size = Number(values.size);
const repeats = Number(values.repeats);
const registry = `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}`;
const port = process.env.STRATA_POSTGRES_PORT ?? "5433";
const state = process.env.STRATA_STATE ?? path.join(projectRoot, ".strata");
const postgres = { PULUMI_BACKEND_URL: `postgres://strata@127.0.0.1:${port}/strata?sslmode=disable`, PGPASSFILE: path.join(state, "postgres/pgpass") };
const salt = Date.now().toString(36);

const side = new StrataSide(`backends${size}-${salt}-mos9.0-dev`, 8, "docker");
const pulumi = (args: string[], env: NodeJS.ProcessEnv): string => execFileSync("pulumi", [...args, "--stack", "bench"], { cwd: side.project, env, encoding: "utf8", maxBuffer: 512 << 20 });
const onPostgres = { ...side.env, ...postgres };
try {
  generateCatalog(side.catalog, size, salt, path.join(projectRoot, "scripts/make-rootfs.sh"));
  const cold = side.up();
  if (cold.built !== size) throw new Error(`the cold build built ${cold.built} of ${size} layers`);
  // The same checkpoint in the database: both backends then hold exactly the same stack.
  const checkpoint = path.join(side.root, "checkpoint.json");
  writeFileSync(checkpoint, pulumi(["stack", "export"], side.env));
  execFileSync("pulumi", ["stack", "init", "bench", "--non-interactive"], { cwd: side.project, env: onPostgres, stdio: "ignore" });
  pulumi(["stack", "import", "--file", checkpoint], onPostgres);

  const file: number[] = [];
  const database: number[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    // Take turns, each starting half of the time, so neither always meets the warmer cache.
    const order = repeat % 2 === 0 ? ["file", "postgres"] : ["postgres", "file"];
    for (const backend of order) {
      const measured = backend === "file" ? side.up() : side.upWith(postgres);
      if (measured.built !== 0) throw new Error(`a no-op on the ${backend} backend built ${measured.built} layers`);
      (backend === "file" ? file : database).push(measured.seconds);
      process.stderr.write(`N=${size} no-op #${repeat + 1} ${backend}: ${measured.seconds.toFixed(1)} s\n`);
    }
  }
  const result = {
    size, repeats,
    fileSeconds: Number(median(file).toFixed(2)), postgresSeconds: Number(median(database).toFixed(2)),
    ratio: Number((median(database) / median(file)).toFixed(2)),
    samples: { file: file.map((value) => Number(value.toFixed(2))), postgres: database.map((value) => Number(value.toFixed(2))) },
  };
  process.stdout.write(`no-op at N=${size}, medians of ${repeats}: file backend ${result.fileSeconds} s, PostgreSQL backend ${result.postgresSeconds} s, ratio ${result.ratio}\n`);
  const out = values.out ?? path.join(projectRoot, ".strata/bench/backends.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`written: ${out}\n`);
} finally {
  try {
    execFileSync("pulumi", ["stack", "rm", "bench", "--yes", "--force"], { cwd: side.project, env: onPostgres, stdio: "ignore" });
  } catch {
    // Never created: the cold build failed first.
  }
  rmSync(side.root, { recursive: true, force: true });
  removeImages(`${registry}/backends${size}-${salt}-`);
}
