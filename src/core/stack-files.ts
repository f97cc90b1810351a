/**
 * Reads stack config the way the Pulumi engine would, from files, so the CLI
 * can answer without an engine: project defaults from `Pulumi.yaml`, then the
 * stack's values from `Pulumi.<stack>.yaml`.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { CONFIG_NAMESPACE, type ConfigSource } from "./config.js";
import { throwIfAny, yamlSyntaxProblems } from "./problems.js";

function readYaml(file: string, display: string): Record<string, unknown> {
  const document = parseDocument(readFileSync(file, "utf8"), { prettyErrors: true });
  if (document.errors.length > 0) {
    throwIfAny(yamlSyntaxProblems(display, document.errors));
  }
  const data: unknown = document.toJS() ?? {};
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throwIfAny([{ file: display, message: "the file is not a mapping", fix: "write it as key: value pairs" }]);
  }
  return data as Record<string, unknown>;
}

/** Defaults declared in the project's `config:` block (typed keys with `default`). */
export function projectDefaults(projectFile: string, display = path.basename(projectFile)): Record<string, unknown> {
  const project = readYaml(projectFile, display);
  const declared = project.config;
  const defaults: Record<string, unknown> = {};
  if (typeof declared !== "object" || declared === null) return defaults;
  for (const [rawKey, declaration] of Object.entries(declared as Record<string, unknown>)) {
    const key = rawKey.startsWith(`${CONFIG_NAMESPACE}:`) ? rawKey.slice(CONFIG_NAMESPACE.length + 1) : rawKey;
    if (typeof declaration === "object" && declaration !== null && "default" in declaration) {
      defaults[key] = (declaration as { default: unknown }).default;
    } else if (typeof declaration !== "object" || declaration === null) {
      defaults[key] = declaration;
    }
  }
  return defaults;
}

/**
 * Whether a stack file's value holds a secret anywhere in it: `{secure: <ciphertext>}` for a value
 * set with `pulumi config set --secret`, or at a leaf of a structured one (`--secret --path`). Its
 * plain value is had only through the engine, which decrypts it.
 */
export function holdsSecret(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (Array.isArray(value)) return value.some(holdsSecret);
  const record = value as Record<string, unknown>;
  if (Object.keys(record).length === 1 && typeof record.secure === "string") return true;
  return Object.values(record).some(holdsSecret);
}

/** The `strata:` values of one stack file, namespace stripped. Other namespaces are ignored. */
export function stackValues(stackFile: string, display = path.basename(stackFile)): Record<string, unknown> {
  const stack = readYaml(stackFile, display);
  const config = stack.config;
  const values: Record<string, unknown> = {};
  if (typeof config !== "object" || config === null) return values;
  for (const [rawKey, value] of Object.entries(config as Record<string, unknown>)) {
    if (rawKey.startsWith(`${CONFIG_NAMESPACE}:`)) values[rawKey.slice(CONFIG_NAMESPACE.length + 1)] = value;
  }
  return values;
}

export interface StackFileOptions {
  readonly projectDir: string;
  readonly stack?: string;
  /** An explicit stack config file instead of `Pulumi.<stack>.yaml`. */
  readonly configFile?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Paths in messages are relative to this folder (default: the process's). */
  readonly displayRoot?: string;
}

/** Merged config source for one stack. */
export function stackConfigSource(options: StackFileOptions): ConfigSource {
  const projectFile = path.join(options.projectDir, "Pulumi.yaml");
  const defaults = existsSync(projectFile) ? projectDefaults(projectFile) : {};
  const stackFile = options.configFile ?? path.join(options.projectDir, `Pulumi.${options.stack ?? "dev"}.yaml`);
  const display = path.relative(options.displayRoot ?? process.cwd(), stackFile) || stackFile;
  if (!existsSync(stackFile)) {
    throwIfAny([{ file: display, message: "the stack config file does not exist", fix: `create it (pulumi stack init ${options.stack ?? "dev"}), or pass --config FILE` }]);
  }
  return { values: { ...defaults, ...stackValues(stackFile, display) }, file: display, env: options.env };
}
