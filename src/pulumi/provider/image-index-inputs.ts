/** Inputs of `strata:index:ImageIndex`: a layer's tag over its per-platform images. No Pulumi import. */
import { type RegistryCredentials } from "../../registry/client.js";
import { type IndexRequest } from "../../registry/image-index.js";
import { parseCredentials } from "./layer-image-inputs.js";

export interface ImageIndexInputs extends IndexRequest {
  readonly registry: string;
  readonly registryAuth?: RegistryCredentials;
}

const text = (value: unknown, what: string): string => {
  if (typeof value !== "string" || value === "") throw new Error(`image index: ${what} must be a non-empty string`);
  return value;
};

export function parseImageIndexInputs(inputs: Readonly<Record<string, unknown>>): ImageIndexInputs {
  if (!Array.isArray(inputs.entries) || inputs.entries.length === 0) throw new Error("image index: entries must be a non-empty list");
  const entries = inputs.entries.map((value: unknown, index: number) => {
    const entry = (value ?? {}) as Record<string, unknown>;
    const digest = text(entry.digest, `digest of entry ${index}`);
    // A repoDigest (`registry/repo@sha256:…`) or a bare digest: the index needs the digest.
    return { platform: text(entry.platform, `platform of entry ${index}`), repository: text(entry.repository, `repository of entry ${index}`), digest: digest.includes("@") ? digest.slice(digest.indexOf("@") + 1) : digest };
  });
  return {
    registry: text(inputs.registry, "registry"),
    repository: text(inputs.repository, "repository"),
    tag: text(inputs.tag, "tag"),
    immutable: inputs.immutable === true,
    entries,
    ...parseCredentials(inputs.registryAuth),
  };
}

/** What changed, for the engine's diff (the login is no reason to write the index again). */
export function diffImageIndex(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): string[] {
  return (["registry", "repository", "tag", "immutable", "entries"] as const).filter((key) => JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
}
