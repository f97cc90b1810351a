/**
 * Pulumi entry point: stack config → catalog → LayerTree (or a Promotion) → stack outputs.
 * Everything with logic lives in src/; this file only reads and wires.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { loadCatalog } from "./src/core/catalog.js";
import { CONFIG_KEYS, CONFIG_NAMESPACE, REGISTRY_PASSWORD_KEY, resolveStackConfig, type StackConfig } from "./src/core/config.js";
import { signingDecision, signingKeyFields, signingKeyProblems } from "./src/core/signing-config.js";
import { type SigningKey } from "./src/engine/cosign.js";
import { parentPullMode } from "./src/core/parent-pull.js";
import { gather, throwIfAny } from "./src/core/problems.js";
import { parseTrustPolicy } from "./src/core/trust-policy.js";
import { defaultBlobCache } from "./src/registry/blob-cache.js";
import { RegistryClient } from "./src/registry/client.js";
import { declareBuild, declarePromotion, publishedLedger, type RunContext } from "./src/pulumi/channel-run.js";
import { forUser } from "./src/pulumi/user-errors.js";
import { usePlainStackTraces } from "./src/pulumi/stack-traces.js";
import { keepSecretsFromChildren } from "./src/pulumi/secret-env.js";

usePlainStackTraces();
// The SDK's store holds the config from here on (allConfig reads it in); no child gets it decrypted.
pulumi.runtime.allConfig();
keepSecretsFromChildren();

// Compiled to dist/index.js; the project root is one level up from it.
const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const catalogDir = process.env.STRATA_CATALOG ?? path.join(projectDir, "layers");
const stack = pulumi.getStack();

// Benchmarks ask for this process's peak memory; nothing is written otherwise.
if (process.env.STRATA_MEMORY_REPORT !== undefined) {
  const reportFile = process.env.STRATA_MEMORY_REPORT;
  process.on("exit", () => writeFileSync(reportFile, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })));
}
// A CI run's per-change stack has its config copied from the channel's file (strata up): problems name that one.
const stackFile = `Pulumi.${process.env.STRATA_CHANNEL_STACK ?? stack}.yaml`;

const engineConfig = new pulumi.Config(CONFIG_NAMESPACE);
const values: Record<string, unknown> = {};
for (const key of CONFIG_KEYS) {
  const value = engineConfig.get(key);
  if (value !== undefined) values[key] = value;
}
const resolved = resolveStackConfig({ values, file: stackFile, env: process.env });
// The catalog's problems and the config's in one list: a user fixing both sees both in the first run.
// A promoting channel (promoteFrom set; Pulumi.yaml's default is "") builds nothing and reads no catalog.
const promoting = typeof values.promoteFrom === "string" && values.promoteFrom !== "";
const catalogRead = promoting ? undefined : gather(() => loadCatalog(catalogDir, projectDir));
// The channel's trust policy (core/trust-policy.ts): what promotion into it admits.
const trustRead = parseTrustPolicy(values.trust, stackFile);
// Read only where docker.Image builds: a promotion or Strata's own builder never pulls a parent first.
const parentPull = parentPullMode(promoting || values.builder === "strata" ? {} : process.env);
await forUser(async () => throwIfAny([...resolved.problems, ...(catalogRead?.problems ?? []), ...trustRead.problems, ...parentPull.problems]));
const config = resolved.config as StackConfig;

// Registry login: the password is a config secret. Resources get it as a secret Output (encrypted in
// the state, never in outputs); the program's registry lookups and the promotion gate's cosign need
// its value, in this process only.
const registryPassword = engineConfig.getSecret(REGISTRY_PASSWORD_KEY);
const registryAuth = config.registryUsername !== undefined && registryPassword !== undefined
  ? pulumi.secret(pulumi.all([config.registryUsername, registryPassword]).apply(([username, password]) => ({ username, password })))
  : undefined;
const credentials = registryAuth === undefined ? undefined : await new Promise<{ username: string; password: string }>((resolve) => registryAuth.apply(resolve));
// Signing (core/signing-config.ts): the cosign key and its passphrase are config secrets. The
// resources get them as one secret Output (encrypted in the state's inputs, never in outputs); their
// values are read here only to check their form, and no message quotes them.
const signingFields = signingKeyFields(config);
const signingKeySecret = engineConfig.getSecret(signingFields.key);
const signingPassphraseSecret = engineConfig.getSecret(signingFields.passphrase);
const plainOf = (secret: pulumi.Output<string> | undefined): Promise<string | undefined> => (secret === undefined ? Promise.resolve(undefined) : new Promise((resolve) => secret.apply(resolve)));
await forUser(async () => throwIfAny(signingKeyProblems(await plainOf(signingKeySecret), await plainOf(signingPassphraseSecret), stackFile, signingFields)));
const signingKey: pulumi.Output<SigningKey> | undefined = signingKeySecret === undefined || signingPassphraseSecret === undefined ? undefined
  : pulumi.secret(pulumi.all([signingKeySecret, signingPassphraseSecret]).apply(([privateKeyPem, password]) => ({ privateKeyPem, password, ...(signingFields.change ? { change: true as const } : {}) })));
const signing = signingDecision(config, signingKey !== undefined, config.ci !== undefined);
const blobCache = defaultBlobCache();
const registry = await forUser(async () => new RegistryClient({ registry: config.registry, ...(credentials === undefined ? {} : { credentials }), ...(blobCache === undefined ? {} : { blobCache }) }));

// What the run declares: src/pulumi/channel-run.ts.
const context: RunContext = {
  stack, stackFile, config, catalogDir, registry,
  // A trust policy's keys are relative to the project folder (where Pulumi.yaml is), the one
  // `strata verify` reads them from: strata up names it (STRATA_PROJECT_DIR), since the engine runs
  // the program in dist/ and this language host does not say; run directly, this program's checkout.
  trustKeysDir: process.env.STRATA_PROJECT_DIR ?? projectDir,
  planPreview: pulumi.runtime.isDryRun() && process.env.STRATA_PLAN === "1",
  ...(registryAuth === undefined ? {} : { registryAuth }),
  ...(credentials === undefined ? {} : { credentials }),
};
const catalog = catalogRead?.value;
const declared = await forUser(() => {
  if (config.promoteFrom !== undefined) return declarePromotion(context, config.promoteFrom, trustRead.policy);
  // A building channel's catalog was read above, its problems thrown with the config's.
  if (catalog === undefined) throw new Error(`the catalog in ${catalogDir} was not read for a building channel`);
  return declareBuild(context, catalog, parentPull.mode, signing.sign ? signingKey : undefined);
});

export const group = config.group;
export const registryAddress = config.registry;
export const promotedFrom = config.promoteFrom ?? null;
/** The source revision is recorded here, never in build inputs: it would rebuild every layer on every commit. */
export const sourceRevision = process.env.STRATA_SOURCE_REVISION ?? "unknown";
export const layers = Object.fromEntries(declared.layers.map((layer) => [layer.layer, { ...layer, ...declared.attested?.get(layer.layer) }]));
/** Whether this stack's images are signed and attested, and if not, why (the summary says the same). */
export const signed = signing.sign ? `signed and attested (strata:${signingFields.key})` : `not signed (${signing.reason})`;
/** The ledger of every tag this stack has published (channel-run.ts publishedLedger). */
export const published = publishedLedger(config, declared);
