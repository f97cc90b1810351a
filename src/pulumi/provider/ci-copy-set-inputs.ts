/** Inputs of `strata:index:CiCopySet`: a CI run's copies inside one registry. No Pulumi import. */
import { type RegistryCredentials } from "../../registry/client.js";
import { parseCredentials } from "./layer-image-inputs.js";

export interface CiCopy {
  readonly layer: string;
  /** `group/image`: the copy stays in the layer's repository. */
  readonly repository: string;
  /** `sha256:…` of the manifest copied (the channel's, or an earlier patchset's). */
  readonly digest: string;
  /** The CI tag. */
  readonly tag: string;
  /** Added to the copy's manifest: a digest of its own, so ci-clean can delete it alone. */
  readonly annotations: Readonly<Record<string, string>>;
}

export interface CiCopySetInputs {
  readonly registry: string;
  readonly copies: readonly CiCopy[];
  readonly registryAuth?: RegistryCredentials;
}

const text = (value: unknown, what: string): string => {
  if (typeof value !== "string" || value === "") throw new Error(`CI copies: ${what} must be a non-empty string`);
  return value;
};

export function parseCiCopySetInputs(inputs: Readonly<Record<string, unknown>>): CiCopySetInputs {
  if (!Array.isArray(inputs.copies)) throw new Error("CI copies: copies must be a list");
  const copies = inputs.copies.map((entry: unknown, index: number): CiCopy => {
    const copy = (entry ?? {}) as Record<string, unknown>;
    const annotations = (copy.annotations ?? {}) as Record<string, unknown>;
    if (typeof annotations !== "object" || !Object.values(annotations).every((value) => typeof value === "string")) throw new Error(`CI copies: annotations of copy ${index} must map names to strings`);
    return {
      layer: text(copy.layer, `layer of copy ${index}`),
      repository: text(copy.repository, `repository of copy ${index}`),
      digest: text(copy.digest, `digest of copy ${index}`),
      tag: text(copy.tag, `tag of copy ${index}`),
      annotations: annotations as Record<string, string>,
    };
  });
  return { registry: text(inputs.registry, "registry"), copies, ...parseCredentials(inputs.registryAuth) };
}

/** What changed, for the engine's diff (the login is no reason to copy again). */
export function diffCiCopySet(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): string[] {
  return (["registry", "copies"] as const).filter((key) => JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
}
