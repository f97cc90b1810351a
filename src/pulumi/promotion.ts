/**
 * The Pulumi shell of promotion: read the source channel's stack outputs and
 * declare one PromotedImage (a server-side copy by digest) per layer.
 */
import * as pulumi from "@pulumi/pulumi";
import { PromotedImage } from "./copied-image.js";
import { PROMOTION_TYPE } from "../core/image-types.js";
import { gateTargets, type IndexChild, promotionRefusals, type PromotionTarget, type SourceLayer } from "../core/promotion-plan.js";
import { type TrustInput, verifyImages } from "../engine/image-verify.js";
import { type RegistryClient } from "../registry/client.js";
import { isIndexManifest } from "../registry/copy.js";
import { attestationTag, signatureTag } from "../core/cosign-format.js";
import { mapLimited } from "../core/concurrency.js";
import { type PublishedLayer } from "./tree.js";

/** The source stack's `layers` output. `dev` means the same project's dev stack. */
export async function readSourceLayers(stack: string): Promise<Record<string, SourceLayer>> {
  const name = stack.includes("/") ? stack : `organization/${pulumi.getProject()}/${stack}`;
  const reference = new pulumi.StackReference(`promote-from-${stack}`, { name });
  const details = await reference.getOutputDetails("layers");
  return (details.value ?? {}) as Record<string, SourceLayer>;
}

/**
 * The promotion gate (issue 29, item 5): every image and index the promotion would copy (an
 * index's platform images too, read from the index itself) verified against the channel's trust
 * policy, before any copy is declared. One paragraph per refused image; none: all admitted. An
 * image whose manifest the registry does not give is refused too, as is one whose `.sig`/`.att`
 * the target repository holds with other bytes already (the copy would refuse to overwrite them,
 * after the images before it were copied): a gate that passes leaves the copies nothing to refuse.
 */
export async function checkPromotion(targets: readonly PromotionTarget[], registry: RegistryClient, trust: TrustInput, cosignBinary: string): Promise<{ refusals: string[]; total: number }> {
  const children = new Map<string, IndexChild[]>();
  // An image whose manifest the registry would not give is refused like any other, in its own
  // paragraph, and the others are still verified: every refusal is said at once.
  const unread = new Map<PromotionTarget, string>();
  for (const target of targets) {
    let found: Awaited<ReturnType<RegistryClient["manifest"]>>;
    try {
      found = await registry.manifest(target.sourceRepository, target.digest);
    } catch (error) {
      unread.set(target, `${target.source.layer} ${registry.registry}/${target.sourceRepository}@${target.digest} is refused: the registry did not say whether it is an image or an index, so its signatures could not be checked (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
      continue;
    }
    if (found === undefined) continue; // Verified below: cosign finds no signature for a digest that is not there.
    if (!isIndexManifest(found.mediaType, found.manifest)) continue;
    children.set(target.digest, (found.manifest.manifests ?? []).map((entry) => ({
      digest: entry.digest,
      platform: [entry.platform?.os ?? "unknown", entry.platform?.architecture ?? "unknown", ...(entry.platform?.variant === undefined ? [] : [entry.platform.variant])].join("/"),
    })));
  }
  const readable = targets.filter((target) => !unread.has(target));
  const conflicts = await mapLimited(readable, CHECK_CONCURRENCY, (target) => cosignTagConflicts(registry, target, children.get(target.digest) ?? []));
  const verifyTargets = gateTargets(readable, registry.registry, children);
  const verdicts = await verifyImages(verifyTargets, trust, { cosignBinary });
  const refusals = [...unread.values(), ...promotionRefusals(verdicts)];
  // One paragraph an image: a conflict joins the paragraph cosign's checks gave it, if any.
  readable.forEach((target, at) => {
    const found = conflicts[at] ?? [];
    if (found.length === 0) return;
    const opening = `${target.source.layer} ${registry.registry}/${target.sourceRepository}@${target.digest} is refused: `;
    const own = refusals.findIndex((paragraph) => paragraph.startsWith(opening));
    if (own >= 0) refusals[own] = `${refusals[own] as string} ${found.join(" ")}`;
    else refusals.push(`${opening}${found.join(" ")}`);
  });
  return { refusals, total: verdicts.length + unread.size };
}

/** Registry reads at once while the gate looks at the target's cosign tags. */
const CHECK_CONCURRENCY = 8;

/**
 * The `.sig`/`.att` tags of an image (and of an index's platform images) that the target repository
 * holds with other bytes than the source's: what copyCosignTags refuses to overwrite. A tag the
 * source lacks is not copied, so it is no conflict. Each comes as `what; fix: …`, as is a registry
 * that does not answer (it cannot be told there is no conflict).
 */
async function cosignTagConflicts(registry: RegistryClient, target: PromotionTarget, children: readonly IndexChild[]): Promise<string[]> {
  const found: string[] = [];
  for (const about of [target.digest, ...children.map((child) => child.digest)]) {
    for (const tag of [signatureTag(about), attestationTag(about)]) {
      let theirs: Awaited<ReturnType<RegistryClient["manifest"]>>;
      let ours: Awaited<ReturnType<RegistryClient["manifest"]>>;
      try {
        [theirs, ours] = await Promise.all([registry.manifest(target.targetRepository, tag), registry.manifest(target.sourceRepository, tag)]);
      } catch (error) {
        found.push(`the registry did not say what ${target.targetRepository}:${tag} holds, so its copy could be refused after others were made (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
        continue;
      }
      if (theirs !== undefined && ours !== undefined && theirs.digest !== ours.digest) {
        found.push(`${registry.registry}/${target.targetRepository}:${tag} holds ${theirs.digest}, not the ${ours.digest} the source holds, and is never overwritten; fix: find out who wrote it (cosign tree ${registry.registry}/${target.targetRepository}@${about}); if it is not wanted, delete it, then promote again.`);
      }
    }
  }
  return found;
}

/** A promoted layer: the source's fingerprints travel with the image. */
export interface PromotedLayer extends PublishedLayer {
  readonly fingerprint: string | null;
  readonly inputsDigest: string | null;
  /** The source channel's `repo@digest`. */
  readonly promotedFrom: string;
}

export class Promotion extends pulumi.ComponentResource {
  readonly layers: readonly PromotedLayer[];

  constructor(name: string, args: { targets: readonly PromotionTarget[]; registry: string; immutable: boolean; registryAuth?: pulumi.Output<{ username: string; password: string }> }, options?: pulumi.ComponentResourceOptions) {
    super(PROMOTION_TYPE, name, {}, options);
    this.layers = args.targets.map((target) => {
      const image = new PromotedImage(target.source.layer, {
        registry: args.registry,
        sourceRepository: target.sourceRepository,
        digest: target.digest,
        targetRepository: target.targetRepository,
        tag: target.tag,
        immutable: args.immutable,
        // Signatures travel with the image, so a channel further on can check them (the promotion gate).
        copySignatures: true,
        ...(args.registryAuth === undefined ? {} : { registryAuth: args.registryAuth }),
      }, { parent: this });
      return {
        layer: target.source.layer,
        kind: target.source.kind,
        image: target.source.image,
        tag: target.tag,
        ref: target.ref,
        digestRef: image.repoDigest,
        fingerprint: target.source.fingerprint ?? null,
        inputsDigest: target.source.inputsDigest ?? null,
        parent: target.source.parent,
        origin: "promoted" as const,
        promotedFrom: target.source.digestRef,
      };
    });
    this.registerOutputs({ layers: this.layers.map((layer) => ({ ...layer })) });
  }
}
