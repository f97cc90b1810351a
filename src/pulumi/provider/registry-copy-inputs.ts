/** Inputs of `strata:index:PromotedImage` and `strata:index:CopiedImage`: a copy by digest inside one registry. No Pulumi import. */
import { type RegistryCredentials } from "../../registry/client.js";
import { parseCredentials } from "./layer-image-inputs.js";

export interface RegistryCopyInputs {
  /** `host[:port]` */
  readonly registry: string;
  /** `group/image` of the source channel. */
  readonly sourceRepository: string;
  /** `sha256:…` of the source manifest. */
  readonly digest: string;
  /** `group/image` of this channel. */
  readonly targetRepository: string;
  readonly tag: string;
  readonly immutable: boolean;
  /** Copy the digest's cosign `.sig`/`.att` tags with it (a promotion; registry/copy.ts copyCosignTags). */
  readonly copySignatures: boolean;
  /** The gate's verified `.sig`/`.att` manifests, tag → digest (registry/copy.ts copyCosignTags); absent without a gate. */
  readonly signatures?: Readonly<Record<string, string>>;
  readonly registryAuth?: RegistryCredentials;
}

export const REGISTRY_COPY_INPUTS = ["registry", "sourceRepository", "digest", "targetRepository", "tag", "immutable", "copySignatures", "signatures"] as const;

const COSIGN_TAG = /^sha256-[a-f0-9]{64}\.(sig|att)$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

function parseSignatures(value: unknown): Readonly<Record<string, string>> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new Error("image copy: signatures must be a mapping of cosign tags to manifest digests");
  for (const [tag, digest] of Object.entries(value)) {
    if (!COSIGN_TAG.test(tag) || typeof digest !== "string" || !SHA256.test(digest)) throw new Error(`image copy: signatures["${tag}"] must map a sha256-<hex>.sig or .att tag to a sha256:<hex> digest`);
  }
  return value as Record<string, string>;
}

export function parseRegistryCopyInputs(inputs: Readonly<Record<string, unknown>>): RegistryCopyInputs {
  const text = (name: Exclude<(typeof REGISTRY_COPY_INPUTS)[number], "immutable" | "copySignatures" | "signatures">): string => {
    const value = inputs[name];
    if (typeof value !== "string" || value === "") throw new Error(`image copy: ${name} must be a non-empty string`);
    return value;
  };
  const copy = {
    registry: text("registry"),
    sourceRepository: text("sourceRepository"),
    digest: text("digest"),
    targetRepository: text("targetRepository"),
    tag: text("tag"),
    immutable: inputs.immutable === true,
    copySignatures: inputs.copySignatures === true,
  };
  // After the fields above, so the first bad field is the one named, as before.
  const signatures = parseSignatures(inputs.signatures);
  return { ...copy, ...(signatures === undefined ? {} : { signatures }), ...parseCredentials(inputs.registryAuth) };
}

/**
 * The inputs whose change is a change of the copy. Not `signatures`: it says which cosign manifests
 * a copy carries when it is made, so a copy made already (or by a state written before it existed)
 * is not made again for it.
 */
export function diffRegistryCopy(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>): string[] {
  return REGISTRY_COPY_INPUTS.filter((key) => key !== "signatures" && JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
}
