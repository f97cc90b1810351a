/**
 * Stack configuration (namespace `strata`): validates the merged values, wherever they came from
 * (the Pulumi engine in the program, the YAML files in the CLI), plus the CI environment for
 * Gerrit change and patchset numbers. Pulumi.yaml declares the defaults and both sources apply
 * them; the fallbacks below (push, platform, builder, immutable, copyUnchanged) are the same values,
 * for a source without the project's defaults (a program under mocks), and a unit test holds the
 * two together.
 */
import { Ajv, type ErrorObject } from "ajv";
import { onePerField, type Problem } from "./problems.js";
import { PLATFORM_PATTERN } from "./platforms.js";
import { isRegistry } from "./reference.js";
import { type CiBuild, formatGroup, groupProblems } from "./version.js";

export const CONFIG_NAMESPACE = "strata";

export interface StackConfig {
  readonly registry: string;
  readonly osRelease: string;
  readonly productVersion: string;
  readonly channel: string;
  /** `<osRelease>-<productVersion>-<channel>` */
  readonly group: string;
  readonly ci?: CiBuild;
  readonly push: boolean;
  /** The first of `platforms`: what a one-platform stack builds for. */
  readonly platform: string;
  /**
   * Every platform each layer is built for: `strata:platforms`, else `[strata:platform]`. With two
   * or more, each layer's tag holds an OCI image index over one image per platform (core/platform-targets.ts).
   */
  readonly platforms: readonly string[];
  /** The static `org.opencontainers.image.source` label. */
  readonly source: string;
  /** Build only these layers and their ancestors; absent means all. */
  readonly layers?: readonly string[];
  /** Which provider builds the images (see BUILDERS). */
  readonly builder: Builder;
  /** An immutable channel never moves a release tag to different content. */
  readonly immutable: boolean;
  /** Feed this channel by copying another stack's images instead of building. */
  readonly promoteFrom?: string;
  /** Registry user; the password is a config secret (strata:registryPassword), never part of this object. */
  readonly registryUsername?: string;
  /**
   * A CI run copies, inside the registry, the layers whose fingerprint the channel already holds
   * and builds only the rest. False rebuilds every layer (kept as the benchmark's comparison).
   */
  readonly copyUnchanged: boolean;
  /** Docker engines to build on (one docker.Provider each); absent: the engine of DOCKER_HOST, as before. */
  readonly engines?: readonly PoolEngine[];
  /** The network the build steps (RUN) get (see BUILD_NETWORKS). */
  readonly buildNetwork: BuildNetwork;
}

/** One Docker engine of a build pool. */
export interface PoolEngine {
  /** `unix:///path/docker.sock`, `tcp://host:2376` or `ssh://user@host`. */
  readonly host: string;
  /** For tcp with TLS: a folder with ca.pem, cert.pem and key.pem (as DOCKER_CERT_PATH). */
  readonly certPath?: string;
  /** The platform this engine builds natively (`linux/arm64`): that platform's builds go to the engines naming it. */
  readonly platform?: string;
}

/**
 * `docker`: docker.Image from @pulumi/docker, through the pulumi-resource-docker plugin.
 * `strata`: Strata's own LayerImage provider (src/pulumi/provider), ahead of docker.Image on large builds (README *Which builder*).
 */
export const BUILDERS = ["docker", "strata"] as const;
export type Builder = (typeof BUILDERS)[number];

/**
 * The network a layer's RUN steps get, as `docker build --network` names it. `default`: the
 * engine's own, a network namespace of its bridge per RUN step, set up and torn down each time;
 * `host`: the host's network namespace, no set-up (20-35 % less engine CPU per trivial layer,
 * README *Performance*), but a build step then sees the host's interfaces and its 127.0.0.1
 * services; `none`: no network at all, for trees whose steps fetch nothing. How a layer is built,
 * not what it holds: a change does not rebuild a layer (pulumi/tree.ts).
 */
export const BUILD_NETWORKS = ["default", "host", "none"] as const;
export type BuildNetwork = (typeof BUILD_NETWORKS)[number];

/** Config keys as they appear after the namespace (`strata:registry` → `registry`). */
export const CONFIG_KEYS = ["registry", "osRelease", "productVersion", "channel", "change", "patchset", "push", "platform", "platforms", "source", "layers", "builder", "immutable", "promoteFrom", "registryUsername", "copyUnchanged", "engines", "trust", "buildNetwork"] as const;

/** The secret config key with the registry password (read with getSecret, never as plain config). */
export const REGISTRY_PASSWORD_KEY = "registryPassword";

/**
 * The secret config keys of a signing stack (core/signing-config.ts): the cosign private key's PEM
 * and its passphrase. Read with getSecret, never as plain config, never part of StackConfig.
 */
export const SIGNING_KEY_KEY = "signingKey";
export const SIGNING_PASSPHRASE_KEY = "signingKeyPassphrase";
/**
 * The key a change's CI stack signs with instead (core/ci-stack-config.ts): a change's run never
 * holds the channel's key, which a trust policy may list.
 */
export const CHANGE_SIGNING_KEY_KEY = "changeSigningKey";
export const CHANGE_SIGNING_PASSPHRASE_KEY = "changeSigningKeyPassphrase";

/** Environment variables that carry the Gerrit change and patchset, in order of preference. */
export const CI_ENVIRONMENT = [
  { change: "GERRIT_CHANGE_NUMBER", patchset: "GERRIT_PATCHSET_NUMBER" },
  { change: "ZUUL_CHANGE", patchset: "ZUUL_PATCHSET" },
] as const;

const NUMBER_LIKE = { anyOf: [{ type: "integer" }, { type: "string" }] } as const;
const CONFIG_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["registry", "osRelease", "productVersion", "channel"],
  properties: {
    registry: { type: "string" },
    osRelease: { type: "string", minLength: 1 },
    productVersion: { type: "string", minLength: 1 },
    channel: { type: "string", minLength: 1 },
    change: NUMBER_LIKE,
    patchset: NUMBER_LIKE,
    push: { anyOf: [{ type: "boolean" }, { enum: ["true", "false"] }] },
    platform: { type: "string", pattern: PLATFORM_PATTERN.source },
    platforms: { anyOf: [{ type: "array", items: { type: "string" } }, { type: "string" }] },
    source: { type: "string" },
    layers: { anyOf: [{ type: "array", items: { type: "string" } }, { type: "string" }] },
    builder: { enum: [...BUILDERS] },
    buildNetwork: { enum: [...BUILD_NETWORKS] },
    immutable: { anyOf: [{ type: "boolean" }, { enum: ["true", "false"] }] },
    promoteFrom: { type: "string", pattern: "^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2})?$" },
    registryUsername: { type: "string" },
    copyUnchanged: { anyOf: [{ type: "boolean" }, { enum: ["true", "false"] }] },
    engines: { anyOf: [{ type: "string" }, { type: "array", items: { anyOf: [{ type: "string" }, { type: "object", additionalProperties: false, required: ["host"], properties: { host: { type: "string" }, certPath: { type: "string" }, platform: { type: "string" } } }] } }] },
    // A secret: in a stack file it is {secure: <ciphertext>}; its value is read through the engine only.
    registryPassword: {},
    // Secrets too (signing-config.ts checks they are stored as secrets, and together).
    signingKey: {},
    signingKeyPassphrase: {},
    changeSigningKey: {},
    changeSigningKeyPassphrase: {},
    // A mapping (or its JSON, as Pulumi stores structured values): trust-policy.ts checks it whole.
    trust: {},
  },
} as const;
const validateShape = new Ajv({ allErrors: true, verbose: true }).compile(CONFIG_SCHEMA);

const FIXES: Record<string, string> = {
  registry: 'set it to host[:port], for example "pulumi config set strata:registry 127.0.0.1:5000"',
  osRelease: 'set it, for example "pulumi config set strata:osRelease debian8.3"',
  productVersion: 'set it, for example "pulumi config set strata:productVersion mos9.0"',
  channel: 'set it, for example "pulumi config set strata:channel stable"',
  push: "use true or false",
  immutable: "use true or false",
  copyUnchanged: "use true or false",
  engines: 'give a list of Docker engine endpoints, for example ["unix:///var/run/docker.sock", {host: "tcp://builder2:2376", certPath: "/etc/strata/builder2", platform: "linux/arm64"}]',
  promoteFrom: 'name the source stack, for example "dev"',
  platform: 'use os/arch, for example "linux/amd64"',
  platforms: 'give a list of os/arch platforms, for example ["linux/amd64", "linux/arm64"]',
  layers: 'give a list of layer folder names, for example ["keystone"]',
  builder: `use one of ${BUILDERS.join(", ")}`,
  buildNetwork: `use one of ${BUILD_NETWORKS.join(", ")} (default: the engine's own network per RUN step)`,
  change: "use the Gerrit change number, a positive whole number",
  patchset: "use the Gerrit patchset number, a positive whole number",
};

function shapeProblem(file: string, error: ErrorObject): Problem {
  if (error.keyword === "additionalProperties") {
    const key = String((error.params as { additionalProperty: string }).additionalProperty);
    return { file, field: `${CONFIG_NAMESPACE}:${key}`, message: "unknown config key", fix: `remove it or correct its spelling; the keys are ${CONFIG_KEYS.map((k) => `${CONFIG_NAMESPACE}:${k}`).join(", ")}` };
  }
  const key = error.keyword === "required"
    ? String((error.params as { missingProperty: string }).missingProperty)
    : (error.instancePath.split("/")[1] ?? "");
  const message = error.keyword === "required" ? "is missing" : `is invalid: ${JSON.stringify(error.data)}`;
  return { file, field: `${CONFIG_NAMESPACE}:${key}`, message, fix: FIXES[key] ?? "correct the value" };
}

/** A positive whole number from config, the environment or the command line (a Gerrit change or patchset). */
export function parseCount(value: unknown): number | undefined {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  // Past 2^53 a Number is rounded: two change numbers would be one.
  return /^[1-9]\d{0,17}$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

/** Whole seconds, zero included (`0`, `00`, `1800`; spaces around allowed), or undefined. Pure. */
export function parseSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  return /^\d{1,15}$/.test(trimmed) ? Number(trimmed) : undefined;
}

export interface ConfigSource {
  /** Merged values by key without namespace (defaults already applied). */
  readonly values: Readonly<Record<string, unknown>>;
  /** Where the values came from, for messages (`Pulumi.dev.yaml`). */
  readonly file: string;
  /** The process environment, for CI change/patchset. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Validates stack config; returns the config or every problem: the schema's (missing, unknown or
 * mistyped keys) and, for every key the schema did not already flag, the value checks (registry,
 * group, change and patchset, layers, each engine entry), all in one list.
 */
export function resolveStackConfig(source: ConfigSource): { config?: StackConfig; problems: Problem[] } {
  const { values, file, env } = source;
  const problems: Problem[] = validateShape(values) ? [] : onePerField((validateShape.errors ?? []).map((error) => shapeProblem(file, error)));
  // A key the schema flagged gets no second problem from the value checks below.
  const flagged = new Set(problems.map((problem) => problem.field));
  const checks = (key: string): boolean => !flagged.has(`${CONFIG_NAMESPACE}:${key}`);
  const text = (key: string): string => String(values[key] ?? "");
  const registry = text("registry");
  if (checks("registry") && !isRegistry(registry)) {
    problems.push({ file, field: `${CONFIG_NAMESPACE}:registry`, message: `"${registry}" is not host[:port]`, fix: FIXES.registry as string });
  }
  const groupParts = { osRelease: text("osRelease"), productVersion: text("productVersion"), channel: text("channel") };
  const groupChecked = ["osRelease", "productVersion", "channel"].every(checks);
  for (const message of groupChecked ? groupProblems(groupParts) : []) {
    problems.push({ file, field: `${CONFIG_NAMESPACE}:osRelease/productVersion/channel`, message, fix: "use lowercase letters, digits, dots and dashes, for example debian8.3, mos9.0, stable" });
  }

  // Config wins over the environment, as a whole: a change from config never pairs with a patchset from CI.
  let changeOrigin = { value: values.change, file, field: `${CONFIG_NAMESPACE}:change` };
  let patchsetOrigin = { value: values.patchset, file, field: `${CONFIG_NAMESPACE}:patchset` };
  if (values.change === undefined && values.patchset === undefined) {
    const names = CI_ENVIRONMENT.find((pair) => env[pair.change] !== undefined || env[pair.patchset] !== undefined);
    if (names !== undefined) {
      changeOrigin = { value: env[names.change], file: "environment", field: names.change };
      patchsetOrigin = { value: env[names.patchset], file: "environment", field: names.patchset };
    }
  }
  let ci: CiBuild | undefined;
  const hasValue = (value: unknown): boolean => value !== undefined && value !== "";
  if (!checks("change") || !checks("patchset")) {
    // The schema already said what is wrong with them.
  } else if (hasValue(changeOrigin.value)) {
    const change = parseCount(changeOrigin.value);
    if (change === undefined) {
      problems.push({ file: changeOrigin.file, field: changeOrigin.field, message: `"${String(changeOrigin.value)}" is not a positive whole number`, fix: FIXES.change as string });
    }
    let patchset: number | undefined;
    if (hasValue(patchsetOrigin.value)) {
      patchset = parseCount(patchsetOrigin.value);
      if (patchset === undefined) {
        problems.push({ file: patchsetOrigin.file, field: patchsetOrigin.field, message: `"${String(patchsetOrigin.value)}" is not a positive whole number`, fix: FIXES.patchset as string });
      }
    }
    if (change !== undefined) ci = patchset === undefined ? { change } : { change, patchset };
  } else if (hasValue(patchsetOrigin.value)) {
    problems.push({ file: patchsetOrigin.file, field: patchsetOrigin.field, message: "a patchset is given without a change", fix: `set the change number too (${CONFIG_NAMESPACE}:change), or remove the patchset` });
  }

  let layers: string[] | undefined;
  if (values.layers !== undefined && checks("layers")) {
    const list = parseList(values.layers);
    if (Array.isArray(list) && list.every((name) => typeof name === "string")) layers = list as string[];
    else problems.push({ file, field: `${CONFIG_NAMESPACE}:layers`, message: `"${String(values.layers)}" is not a list of layer names`, fix: FIXES.layers as string });
  }
  const platform = values.platform === undefined ? "linux/amd64" : text("platform");
  let platforms: string[] = [platform];
  if (values.platforms !== undefined && values.platforms !== "" && checks("platforms")) {
    const parsed = parsePlatforms(values.platforms);
    for (const error of parsed.errors) problems.push({ file, field: `${CONFIG_NAMESPACE}:platforms`, message: error, fix: FIXES.platforms as string });
    if (parsed.platforms.length > 0) platforms = parsed.platforms;
  }
  const push = values.push === undefined ? true : values.push === true || values.push === "true";
  if (platforms.length > 1 && !push) {
    problems.push({ file, field: `${CONFIG_NAMESPACE}:push`, message: `is false, but ${platforms.length} platforms need a registry: each layer's tag is an index over images pushed per platform`, fix: `set ${CONFIG_NAMESPACE}:push to true, or build one platform (${CONFIG_NAMESPACE}:platform) locally` });
  }
  const parsedEngines = values.engines === undefined || values.engines === "" || !checks("engines") ? undefined : parseEngines(values.engines);
  for (const error of parsedEngines?.errors ?? []) problems.push({ file, field: `${CONFIG_NAMESPACE}:engines`, message: error, fix: FIXES.engines as string });
  const engines = parsedEngines?.engines;
  if (engines !== undefined && engines.length > 0 && values.builder === "strata") {
    problems.push({ file, field: `${CONFIG_NAMESPACE}:engines`, message: "a pool of engines is built on by docker.Image only", fix: `remove ${CONFIG_NAMESPACE}:builder (docker is the default) or ${CONFIG_NAMESPACE}:engines` });
  }
  if (problems.length > 0) return { problems: onePerFieldAndMessage(problems) };
  const config: StackConfig = {
    registry,
    ...groupParts,
    group: formatGroup(groupParts),
    ...(ci === undefined ? {} : { ci }),
    push,
    platform: platforms[0] as string,
    platforms,
    source: text("source"),
    ...(layers === undefined ? {} : { layers }),
    builder: values.builder === undefined ? "docker" : (values.builder as Builder),
    immutable: values.immutable === true || values.immutable === "true",
    ...(values.promoteFrom === undefined || values.promoteFrom === "" ? {} : { promoteFrom: text("promoteFrom") }),
    ...(values.registryUsername === undefined || values.registryUsername === "" ? {} : { registryUsername: text("registryUsername") }),
    copyUnchanged: values.copyUnchanged === undefined || values.copyUnchanged === true || values.copyUnchanged === "true",
    ...(engines !== undefined && engines.length > 0 ? { engines } : {}),
    buildNetwork: values.buildNetwork === undefined ? "default" : (values.buildNetwork as BuildNetwork),
  };
  return { config, problems: [] };
}

/** The same problem twice (a field and its message) is said once. */
function onePerFieldAndMessage(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.file}\0${problem.field ?? ""}\0${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * A list as config gives it: a YAML list as is, or a string holding a JSON list (what Pulumi config
 * stores) or a comma-separated list; anything else is `{ error }`.
 */
export function parseList(value: unknown): unknown[] | { error: string } {
  if (Array.isArray(value)) return value;
  if (typeof value !== "string") return { error: "is not a list" };
  const trimmed = value.trim();
  if (!trimmed.startsWith("[")) return trimmed.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
  try {
    const parsed: unknown = JSON.parse(trimmed);
    return Array.isArray(parsed) ? parsed : { error: `"${trimmed}" is not a JSON list` };
  } catch {
    return { error: `"${trimmed}" is not a JSON list` };
  }
}

const ENGINE_HOST = /^(unix:\/\/\/\S+|tcp:\/\/[A-Za-z0-9.-]+:\d{1,5}|ssh:\/\/\S+)$/;

/** `engines` as a list (parseList); every bad entry is a problem of its own, not only the first. */
function parseEngines(value: unknown): { engines: PoolEngine[]; errors: string[] } {
  const entries = parseList(value);
  if (!Array.isArray(entries)) return { engines: [], errors: [entries.error] };
  const engines: PoolEngine[] = [];
  const errors: string[] = [];
  for (const entry of entries) {
    const endpoint = typeof entry === "string" ? { host: entry } : (entry as PoolEngine);
    if (typeof endpoint?.host !== "string" || !ENGINE_HOST.test(endpoint.host)) errors.push(`${JSON.stringify(entry)} is not unix:///path, tcp://host:port or ssh://host`);
    else if (endpoint.certPath !== undefined && typeof endpoint.certPath !== "string") errors.push(`certPath of ${endpoint.host} must be a folder path`);
    else if (endpoint.platform !== undefined && (typeof endpoint.platform !== "string" || !PLATFORM_PATTERN.test(endpoint.platform))) errors.push(`platform of ${endpoint.host} must be os/arch, for example "linux/arm64"`);
    else if (engines.some((known) => known.host === endpoint.host)) errors.push(`${endpoint.host} is listed twice`);
    else engines.push({ host: endpoint.host, ...(endpoint.certPath === undefined ? {} : { certPath: endpoint.certPath }), ...(endpoint.platform === undefined ? {} : { platform: endpoint.platform }) });
  }
  return { engines, errors };
}

/** `platforms` as a list (parseList): every entry os/arch, none twice; every bad entry is a problem of its own. */
function parsePlatforms(value: unknown): { platforms: string[]; errors: string[] } {
  const entries = parseList(value);
  if (!Array.isArray(entries)) return { platforms: [], errors: [entries.error] };
  const platforms: string[] = [];
  const errors: string[] = [];
  for (const entry of entries) {
    if (typeof entry !== "string" || !PLATFORM_PATTERN.test(entry)) errors.push(`${JSON.stringify(entry)} is not os/arch[/variant]`);
    else if (platforms.includes(entry)) errors.push(`${entry} is listed twice`);
    else platforms.push(entry);
  }
  if (entries.length === 0) errors.push("is an empty list");
  return { platforms: errors.length > 0 ? [] : platforms, errors };
}
