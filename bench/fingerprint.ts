/**
 * Fingerprinting throughput on a catalog (default: the sample catalog with its
 * debootstrap rootfs), next to `sha256sum` over the same files, the floor for
 * hashing them. Prints a table and writes JSON.
 *   node dist/bench/fingerprint.js [--catalog DIR] [--runs N] [--out FILE]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadCatalog } from "../src/core/catalog.js";
import { fingerprintTargets } from "../src/core/fingerprint.js";
import { listContext } from "../src/core/hash.js";
import { type LayerTarget } from "../src/core/plan.js";
import { renderTable } from "../src/cli/table.js";
import { formatTag } from "../src/core/version.js";
import { median, projectRoot } from "./stats.js";

const { values } = parseArgs({ options: { catalog: { type: "string" }, runs: { type: "string", default: "5" }, out: { type: "string" } } });
const catalogDir = path.resolve(values.catalog ?? path.join(projectRoot, "layers"));
const runs = Number(values.runs);
const catalog = loadCatalog(catalogDir);
// Names and tags do not matter for hashing speed; plan with a fixed config.
const targets: LayerTarget[] = catalog.layers.map((layer) => ({
  layer,
  repository: `r/g/${layer.image}`,
  repositoryPath: `g/${layer.image}`,
  tag: formatTag(layer.version),
  releaseTag: formatTag(layer.version),
  ref: `r/g/${layer.image}:${formatTag(layer.version)}`,
  ...(layer.parent === undefined ? {} : { parent: layer.parent }),
  ownBuildArgs: { STRATA_VERSION: formatTag(layer.version), STRATA_SOURCE: "" },
}));

const files = targets.flatMap((target) => [
  target.layer.dockerfile,
  ...listContext(target.layer.contextDir).entries.filter((entry) => entry.type === "file").map((entry) => path.join(target.layer.contextDir, entry.path)),
]);
const bytes = files.reduce((total, file) => total + statSync(file).size, 0);

async function time(task: () => Promise<unknown> | unknown): Promise<number> {
  const started = process.hrtime.bigint();
  await task();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

// One untimed pass each, so both read from the page cache.
await fingerprintTargets(targets, "linux/amd64");
const sha256sum = () => {
  const result = spawnSync("sha256sum", files, { stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0) throw new Error("sha256sum failed");
};
sha256sum();

const strataSeconds: number[] = [];
const floorSeconds: number[] = [];
for (let run = 0; run < runs; run++) {
  strataSeconds.push(await time(() => fingerprintTargets(targets, "linux/amd64")));
  floorSeconds.push(await time(sha256sum));
}
const mb = bytes / 1e6;
const strata = median(strataSeconds);
const floor = median(floorSeconds);
const result = {
  catalog: path.relative(projectRoot, catalogDir) || catalogDir,
  layers: targets.length,
  files: files.length,
  megabytes: Number(mb.toFixed(1)),
  runs,
  strataSeconds: Number(strata.toFixed(3)),
  sha256sumSeconds: Number(floor.toFixed(3)),
  strataMBps: Number((mb / strata).toFixed(0)),
  sha256sumMBps: Number((mb / floor).toFixed(0)),
  ratio: Number((floor / strata).toFixed(2)),
};
process.stdout.write(`${renderTable(["what", "seconds (median)", "MB/s"], [
  [`strata fingerprint (${result.layers} layers, ${result.files} files, ${result.megabytes} MB)`, String(result.strataSeconds), String(result.strataMBps)],
  ["sha256sum over the same files", String(result.sha256sumSeconds), String(result.sha256sumMBps)],
])}\nstrata / sha256sum throughput: ${result.ratio}\n`);
const out = values.out ?? path.join(projectRoot, ".strata/bench/fingerprint.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
