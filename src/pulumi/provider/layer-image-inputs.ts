/** The inputs of `strata:index:LayerImage`, shared by the resource class and its provider. No Pulumi import. */
import { type RegistryCredentials } from "../../registry/client.js";
import { type BuildRequest } from "./docker-cli.js";

/** What the docker CLI needs to build (see docker-cli.ts), plus what the resource adds. */
export interface LayerImageInputs extends BuildRequest {
  readonly push: boolean;
  /** sha256 of the build context as Docker would send it: a changed file changes this input. */
  readonly contextDigest: string;
}

/** The inputs whose change means a rebuild, in the order a diff reports them. */
export const LAYER_IMAGE_INPUTS = ["imageName", "context", "dockerfile", "platform", "buildArgs", "labels", "push", "contextDigest"] as const;

/** Names of inputs that differ (structurally); unknown values (preview) always differ. */
export function diffLayerImage(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): string[] {
  return LAYER_IMAGE_INPUTS.filter((key) => canonical(olds[key]) !== canonical(news[key]));
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "undefined";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record).sort().map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`).join(",")}}`;
}

const stringRecord = (value: unknown, name: string): Record<string, string> => {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`LayerImage: ${name} must be a map of strings`);
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, String(item)]));
};

const requiredString = (value: unknown, name: string): string => {
  if (typeof value !== "string" || value === "") throw new Error(`LayerImage: ${name} must be a non-empty string`);
  return value;
};

export function parseLayerImageInputs(inputs: Readonly<Record<string, unknown>>): LayerImageInputs {
  return {
    imageName: requiredString(inputs.imageName, "imageName"),
    context: requiredString(inputs.context, "context"),
    dockerfile: requiredString(inputs.dockerfile, "dockerfile"),
    platform: requiredString(inputs.platform, "platform"),
    buildArgs: stringRecord(inputs.buildArgs, "buildArgs"),
    labels: stringRecord(inputs.labels, "labels"),
    push: inputs.push !== false,
    contextDigest: requiredString(inputs.contextDigest, "contextDigest"),
    ...(inputs.network === undefined ? {} : { network: requiredString(inputs.network, "network") }),
    ...parseCredentials(inputs.registryAuth),
  };
}

/** Pulumi's wire marker for a secret value (the provider is handed secrets wrapped). */
export const SECRET_SIGNATURE = ["4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"] as const;

/** The plain value of a possibly secret-wrapped property. */
export function unwrapSecret(value: unknown): unknown {
  if (typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIGNATURE[0]] === SECRET_SIGNATURE[1]) {
    return unwrapSecret((value as { value?: unknown }).value);
  }
  return value;
}

/** `{registryAuth}` when both parts are present, else nothing. */
export function parseCredentials(wrapped: unknown): { registryAuth?: RegistryCredentials } {
  const value = unwrapSecret(wrapped);
  if (typeof value !== "object" || value === null) return {};
  const username = unwrapSecret((value as Record<string, unknown>).username);
  const password = unwrapSecret((value as Record<string, unknown>).password);
  return typeof username === "string" && typeof password === "string" && username !== "" ? { registryAuth: { username, password } } : {};
}

/** Inputs as stored in outputs: credentials stay out of them. */
export function withoutCredentials(props: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { registryAuth: _dropped, ...rest } = props;
  return rest;
}
