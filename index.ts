/**
 * Pulumi entry point: stack config → catalog → LayerTree → stack outputs.
 * Everything with logic lives in src/; this file only reads and wires.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { loadCatalog } from "./src/catalog.js";
import { conflictProblems, decideChannel, lookUpPublished, type RegistryView } from "./src/channel.js";
import { fingerprintTargets } from "./src/fingerprint.js";
import { RegistryClient } from "./src/registry.js";
import { CONFIG_KEYS, CONFIG_NAMESPACE, resolveStackConfig } from "./src/config.js";
import { planTargets } from "./src/plan.js";
import { throwIfAny } from "./src/problems.js";
import { LayerTree } from "./src/tree.js";

// Compiled to dist/index.js; the project root is one level up from it.
const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const catalogDir = process.env.STRATA_CATALOG ?? path.join(projectDir, "layers");
const stackFile = `Pulumi.${pulumi.getStack()}.yaml`;

const engineConfig = new pulumi.Config(CONFIG_NAMESPACE);
const values: Record<string, unknown> = {};
for (const key of CONFIG_KEYS) {
  const value = engineConfig.get(key);
  if (value !== undefined) values[key] = value;
}
const { config, problems } = resolveStackConfig({ values, file: stackFile, env: process.env });
throwIfAny(problems);
if (config === undefined) throw new Error("unreachable: no config and no problems");

const catalog = loadCatalog(catalogDir, projectDir);
const targets = planTargets(catalog, config, stackFile);
const fingerprints = await fingerprintTargets(targets, config.platform);

// Before anything is built: what does the channel already hold under these tags?
const view: RegistryView = config.push
  ? await lookUpPublished(targets, new RegistryClient({ registry: config.registry }))
  : { published: new Map() };
if (view.unreachable !== undefined) {
  await pulumi.log.warn(`${view.unreachable}; every layer counts as unpublished`);
}
const decision = decideChannel(targets, fingerprints, view, config);
throwIfAny(conflictProblems(decision.conflicts, stackFile, pulumi.getStack()));

const tree = new LayerTree("layers", { targets, config, fingerprints, published: decision.reuse });

export const group = config.group;
export const registry = config.registry;
/** The source revision is recorded here, never in build inputs: it would rebuild every layer on every commit. */
export const sourceRevision = process.env.STRATA_SOURCE_REVISION ?? "unknown";
export const layers = Object.fromEntries(tree.layers.map((layer) => [layer.layer, layer]));
