/**
 * Signed, attested images as resources (issue 29): `strata:index:ImageAttestationsSet`s that sign
 * every image a signing stack publishes (each layer; for a multi-platform layer, each platform's
 * image, the index, and each platform's image again in the index's repository, the one users pull
 * from), each image keyed on its digest reference; which set signs which layer, and why sets:
 * core/attestation-sets.ts. `pulumi preview` shows the sets that would sign; a rerun on the same
 * digests writes nothing; a rebuilt layer's new digest is signed beside the old one
 * (provider/main.ts, attest-image.ts).
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { attestationSets } from "../core/attestation-sets.js";
import { checkoutFile } from "../core/checkout.js";
import { type StackConfig } from "../core/config.js";
import { type LayerTarget } from "../core/plan.js";
import { type IndexTarget } from "../core/platform-targets.js";
import { platformSlug } from "../core/platforms.js";
import { type SourceState } from "../core/provenance.js";
import { type SigningKey } from "../engine/cosign.js";
import { sourceState } from "../engine/source-info.js";
import { engineEndpoint, engineGet } from "./docker-engine.js";
import { type IndexedLayerOutput } from "./image-index.js";
import { IMAGE_ATTESTATIONS_SET_TYPE } from "../core/image-types.js";
import { type ImageAttestationsOutputs, type ProvenanceFacts, type RunFacts } from "./provider/image-attestations-inputs.js";
import { type LayerOutput } from "./tree.js";

export interface ImageAttestationsSetArgs {
  readonly registry: pulumi.Input<string>;
  /** Name (a layer's, or `layer/os-arch`) → the image signed: its `registry/group/image@sha256:…`, the tag it is published under (the SBOM document's name), and what its provenance records beyond its digest. */
  readonly images: Readonly<Record<string, { readonly digestRef: pulumi.Input<string>; readonly tag: string; readonly provenanceFacts: pulumi.Input<ProvenanceFacts> }>>;
  /** A secret: encrypted in the state's inputs, never in the outputs (the provider leaves it out). */
  readonly signingKey: pulumi.Input<SigningKey>;
  readonly registryAuth?: pulumi.Input<{ username: pulumi.Input<string>; password: pulumi.Input<string> }>;
}

export class ImageAttestationsSet extends pulumi.CustomResource {
  /** Name → where its signature and attestations are (`repo:sha256-<hex>.sig`, `.att`), its package count, and the digest they are about. */
  declare readonly attested: pulumi.Output<Record<string, ImageAttestationsOutputs>>;

  constructor(name: string, args: ImageAttestationsSetArgs, options?: pulumi.CustomResourceOptions) {
    super(IMAGE_ATTESTATIONS_SET_TYPE, name, { ...args, attested: undefined }, options);
  }
}

/**
 * The run's facts: the catalog's git checkout (source-info.ts: fails when there is none, since
 * provenance cannot name a source it does not know), Strata's version, the engine's version as it
 * answers (or "unknown" when it is behind TLS or SSH, said as such).
 */
export async function runFacts(args: { catalogDir: string; stack: string; config: StackConfig }): Promise<RunFacts> {
  const packageFile = checkoutFile("package.json");
  const strataVersion = packageFile === undefined ? "unknown" : String((JSON.parse(readFileSync(packageFile, "utf8")) as { version?: unknown }).version ?? "unknown");
  let engineVersion = "unknown (the engine did not say)";
  try {
    const answer = await engineGet("/version", engineEndpoint());
    const version = answer.status === 200 ? (JSON.parse(answer.body) as { Version?: unknown }).Version : undefined;
    if (typeof version === "string" && version !== "") engineVersion = version;
  } catch {
    // An engine the Engine API client cannot reach here (TLS, SSH) built through its provider: its version stays "unknown".
  }
  return {
    stack: args.stack,
    channel: args.config.channel,
    strataVersion,
    engine: { name: args.config.builder === "strata" ? "strata LayerImage (Docker Engine API)" : "docker.Image (@pulumi/docker)", version: engineVersion, network: args.config.buildNetwork },
    source: await checkedSource(args.catalogDir),
  };
}

/**
 * The catalog checkout's state for the provenance, and, when it is not clean, a warning that says
 * why: every image signed from it records a dirty tree, which a channel with strata:trust refuses
 * (and a digest is attested once, so the same bytes built again from a clean checkout keep it).
 */
async function checkedSource(catalogDir: string): Promise<SourceState> {
  const { difference, ...source } = await sourceState(catalogDir);
  if (difference !== undefined) {
    await pulumi.log.warn(`the catalog's git checkout is not its commit ${source.commit.slice(0, 12)} (${difference}): the images this run signs record a dirty tree, which a channel with strata:trust refuses; fix: commit or remove the difference before building what you will promote`);
  }
  return source;
}

/** A layer's entry in the `layers` stack output gains these. */
export interface AttestedLayer {
  readonly signature: pulumi.Output<string>;
  readonly sbom: pulumi.Output<string>;
  readonly provenance: pulumi.Output<string>;
  readonly packages: pulumi.Output<number>;
}

export interface DeclareAttestationsArgs {
  readonly registry: string;
  readonly targets: readonly LayerTarget[];
  readonly indexes: readonly IndexTarget[];
  readonly platform: string;
  readonly facts: RunFacts;
  /** Layer → the `repo@sha256:…` its image was copied from (core/layer-origin.ts copiedFromOf); a layer absent here was built or adopted. */
  readonly copiedFrom?: ReadonlyMap<string, string>;
  /** Layers whose image this run adopted (core/layer-origin.ts adoptedOf): their provenance says so. */
  readonly adopted?: ReadonlySet<string>;
  readonly signingKey: pulumi.Output<SigningKey>;
  readonly registryAuth?: pulumi.Output<{ username: string; password: string }>;
}

/** The ImageAttestationsSets of every published image; layer name → its outputs (an index layer: the index's). */
export function declareAttestations(layers: readonly (LayerOutput | IndexedLayerOutput)[], args: DeclareAttestationsArgs, parent: pulumi.Resource): Map<string, AttestedLayer> {
  const byName = new Map(layers.map((layer) => [layer.layer, layer] as const));
  const targets = new Map(args.targets.map((target) => [target.layer.name, target] as const));
  const indexes = new Map(args.indexes.map((index) => [index.layer, index] as const));
  const copiedFrom = args.copiedFrom ?? new Map<string, string>();
  // The nearest ancestor this run adopted that the layer's image holds: up its parents, stopping at
  // a copied one, whose bytes are the image it was copied from (what that image was built on is its
  // own provenance's to say, not this run's).
  // Only for an image this run built: a copy's or an adopted image's bytes are not its build's, and
  // its provenance says so already.
  const adoptedAncestorOf = (layer: LayerOutput): LayerOutput | undefined => {
    if (copiedFrom.has(layer.layer) || args.adopted?.has(layer.layer) === true) return undefined;
    const seen = new Set<string>();
    for (let name = layer.parent; name !== null && !seen.has(name) && !copiedFrom.has(name); name = byName.get(name)?.parent ?? null) {
      seen.add(name);
      const ancestor = byName.get(name);
      if (ancestor !== undefined && args.adopted?.has(name) === true) return ancestor;
    }
    return undefined;
  };
  const factsOf = (layer: LayerOutput, platform: string, buildArgs: Readonly<Record<string, string>>): pulumi.Output<ProvenanceFacts> => {
    // The parent as the image was made on it: a copied parent's children build on the image the
    // copy is made from (its BASE_IMAGE, pulumi/tree.ts), not on the copy's own annotated digest;
    // a copy's own parent is named the same way (the image its parent's copy is made from, with the
    // parent's fingerprint). Both are known before the run starts, so the input is the same on a rerun.
    const parentRef = layer.parent === null ? undefined : copiedFrom.get(layer.parent) ?? byName.get(layer.parent)?.digestRef;
    const source = copiedFrom.get(layer.layer);
    const ancestor = adoptedAncestorOf(layer);
    return pulumi.all([parentRef ?? null, ancestor === undefined ? null : ancestor.digestRef]).apply(([parentDigestRef, adoptedAncestor]) => ({
      ...args.facts,
      layer: layer.layer,
      fingerprint: layer.fingerprint,
      parent: parentDigestRef,
      // Only on a copy: a built image's inputs stay as they were.
      ...(source === undefined ? {} : { copiedFrom: source }),
      ...(args.adopted?.has(layer.layer) === true ? { adopted: true as const } : {}),
      // Built on an adopted image, whose bytes are in this one: the provenance says so (the gate
      // judges each image with its parent, core/trust-verdict.ts admitParentsFirst).
      ...(adoptedAncestor === null ? {} : { adoptedAncestor }),
      buildArgs,
      platform,
    }));
  };
  /** Layer → its images by name (a multi-platform layer's index and its platforms' images go in its layer's set). */
  const imagesOf = new Map<string, Record<string, ImageAttestationsSetArgs["images"][string]>>();
  const declare = (layer: string, name: string, digestRef: pulumi.Input<string>, tag: string, provenanceFacts: pulumi.Output<ProvenanceFacts>): void => {
    imagesOf.set(layer, { ...imagesOf.get(layer), [name]: { digestRef, tag, provenanceFacts } });
  };
  for (const layer of layers) {
    const index = indexes.get(layer.layer);
    if (index === undefined) {
      const target = targets.get(layer.layer);
      declare(layer.layer, layer.layer, layer.digestRef, layer.tag, factsOf(layer, target?.platform ?? args.platform, target?.ownBuildArgs ?? {}));
      continue;
    }
    // The index, and each platform's image again in the index's repository: `cosign verify` of the
    // digest a pull resolves there looks for its .sig in that repository, not in the per-platform one.
    const indexed = layer as IndexedLayerOutput;
    declare(layer.layer, layer.layer, layer.digestRef, layer.tag, factsOf(layer, index.entries.map((entry) => entry.platform).join(","), index.target.ownBuildArgs));
    for (const entry of index.entries) {
      const perPlatform = byName.get(entry.name);
      if (perPlatform === undefined) throw new Error(`layer ${layer.layer}: no ${entry.platform} image was declared`);
      declare(layer.layer, `${layer.layer}/${platformSlug(entry.platform)}`, indexed.platforms.apply((digests) => digests[entry.platform] as string), layer.tag, factsOf(perPlatform, entry.platform, targets.get(entry.name)?.ownBuildArgs ?? {}));
    }
  }
  const attested = new Map<string, AttestedLayer>();
  for (const { name, layers: members } of attestationSets(layers)) {
    const set = new ImageAttestationsSet(name, {
      registry: args.registry,
      images: Object.assign({}, ...members.map((member) => imagesOf.get(member))) as ImageAttestationsSetArgs["images"],
      signingKey: args.signingKey,
      ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
    }, { parent });
    const of = <K extends keyof ImageAttestationsOutputs>(image: string, key: K): pulumi.Output<ImageAttestationsOutputs[K]> => set.attested.apply((signed) => {
      const entry = signed[image];
      if (entry === undefined) throw new Error(`${name}: Strata's provider reported nothing for the image "${image}" it was to sign`);
      return entry[key];
    });
    for (const member of members) attested.set(member, { signature: of(member, "signature"), sbom: of(member, "sbom"), provenance: of(member, "provenance"), packages: of(member, "packages") });
  }
  return attested;
}
