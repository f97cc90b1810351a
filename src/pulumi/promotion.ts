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
 * image whose manifest the registry does not give is refused too, as is one that is still to be
 * copied whose `.sig`/`.att` the target repository holds with other bytes already (the copy would
 * refuse to overwrite them, after the images before it were copied): a gate that passes leaves the
 * copies nothing to refuse. `signatures`: by layer, for the images still to be copied, the
 * `.sig`/`.att` manifests it verified (tag → digest), what their copies carry. An image the target
 * holds under its tag already is verified again but not copied, so a signature added on the source
 * since it was promoted neither reaches the channel nor refuses the promotion. `verify` is
 * cosign's verification (image-verify.ts); tests give their own.
 */
export async function checkPromotion(
  targets: readonly PromotionTarget[],
  registry: RegistryClient,
  trust: TrustInput,
  cosignBinary: string,
  verify: typeof verifyImages = verifyImages,
): Promise<{ refusals: string[]; total: number; signatures: ReadonlyMap<string, Readonly<Record<string, string>>> }> {
  const children = new Map<string, IndexChild[]>();
  // An image whose manifests the registry would not give is refused like any other, in its own
  // paragraph, and the others are still verified: every refusal is said at once.
  const unread = new Map<PromotionTarget, string>();
  const promoted = new Set<PromotionTarget>();
  for (const target of targets) {
    let found: Awaited<ReturnType<RegistryClient["manifest"]>>;
    let held: Awaited<ReturnType<RegistryClient["manifest"]>>;
    try {
      [found, held] = await Promise.all([registry.manifest(target.sourceRepository, target.digest), registry.manifest(target.targetRepository, target.tag)]);
    } catch (error) {
      unread.set(target, `${target.source.layer} ${registry.registry}/${target.sourceRepository}@${target.digest} is refused: the registry did not say whether it is an image or an index, or what ${target.targetRepository}:${target.tag} holds, so its signatures could not be checked (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
      continue;
    }
    if (held?.digest === target.digest) promoted.add(target);
    if (found === undefined) continue; // Verified below: cosign finds no signature for a digest that is not there.
    if (!isIndexManifest(found.mediaType, found.manifest)) continue;
    children.set(target.digest, (found.manifest.manifests ?? []).map((entry) => ({
      digest: entry.digest,
      platform: [entry.platform?.os ?? "unknown", entry.platform?.architecture ?? "unknown", ...(entry.platform?.variant === undefined ? [] : [entry.platform.variant])].join("/"),
    })));
  }
  const readable = targets.filter((target) => !unread.has(target));
  const toCopy = readable.filter((target) => !promoted.has(target));
  const tagsOf = (target: PromotionTarget): string[] => [target.digest, ...(children.get(target.digest) ?? []).map((child) => child.digest)].flatMap((about) => [signatureTag(about), attestationTag(about)]);
  const before = await mapLimited(toCopy, CHECK_CONCURRENCY, (target) => readCosignTags(registry, target, tagsOf(target)));
  const verdicts = await verify(gateTargets(readable, registry.registry, children), trust, { cosignBinary });
  // Read again: what cosign verified is what the source's tags held both before and after it ran,
  // and that, by digest, is what the copy carries (copyCosignTags). A tag that moved meanwhile
  // cannot be told apart from a swap, so the image is refused.
  const after = await mapLimited(toCopy, CHECK_CONCURRENCY, (target) => readCosignTags(registry, target, tagsOf(target)));
  const refusals = [...unread.values(), ...promotionRefusals(verdicts)];
  const signatures = new Map<string, Record<string, string>>();
  toCopy.forEach((target, at) => {
    const was = before[at] as CosignTags;
    const now = after[at] as CosignTags;
    const found = [...was.problems, ...now.problems.filter((problem) => !was.problems.includes(problem))];
    for (const tag of tagsOf(target)) {
      // A tag the registry did not answer for is a problem above already, not a change.
      if (was.unknown.has(tag) || now.unknown.has(tag) || was.source.get(tag) === now.source.get(tag)) continue;
      found.push(`${registry.registry}/${target.sourceRepository}:${tag} changed while it was verified (${was.source.get(tag) ?? "absent"}, then ${now.source.get(tag) ?? "absent"}), so what was verified is not known to be what would be copied; fix: promote again, and if it keeps changing, find out what writes the source channel's signatures.`);
    }
    signatures.set(target.source.layer, Object.fromEntries(was.source));
    if (found.length === 0) return;
    // One paragraph an image: these join the paragraph cosign's checks gave it, if any.
    const opening = `${target.source.layer} ${registry.registry}/${target.sourceRepository}@${target.digest} is refused: `;
    const own = refusals.findIndex((paragraph) => paragraph.startsWith(opening));
    if (own >= 0) refusals[own] = `${refusals[own] as string} ${found.join(" ")}`;
    else refusals.push(`${opening}${found.join(" ")}`);
  });
  return { refusals, total: verdicts.length + unread.size, signatures };
}

/** Registry reads at once while the gate looks at the cosign tags. */
const CHECK_CONCURRENCY = 8;

interface CosignTags {
  /** The source's `.sig`/`.att` tags that exist: tag → manifest digest. */
  readonly source: Map<string, string>;
  /** Tags the registry did not answer for. */
  readonly unknown: Set<string>;
  /** Why the copy would be refused, each as `what; fix: …`. */
  readonly problems: string[];
}

/**
 * The `.sig`/`.att` tags of an image (and of an index's platform images) in the source, and those
 * the target repository holds with other bytes than the source's: what copyCosignTags refuses to
 * overwrite. A tag the source lacks is not copied, so it is no conflict. A registry that does not
 * answer is a problem too (it cannot be told there is no conflict).
 */
async function readCosignTags(registry: RegistryClient, target: PromotionTarget, tags: readonly string[]): Promise<CosignTags> {
  const source = new Map<string, string>();
  const unknown = new Set<string>();
  const problems: string[] = [];
  for (const tag of tags) {
    let theirs: Awaited<ReturnType<RegistryClient["manifest"]>>;
    let ours: Awaited<ReturnType<RegistryClient["manifest"]>>;
    try {
      [theirs, ours] = await Promise.all([registry.manifest(target.targetRepository, tag), registry.manifest(target.sourceRepository, tag)]);
    } catch (error) {
      unknown.add(tag);
      problems.push(`the registry did not say what ${target.sourceRepository}:${tag} and ${target.targetRepository}:${tag} hold, so what would be copied is not known (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
      continue;
    }
    if (ours !== undefined) source.set(tag, ours.digest);
    if (theirs !== undefined && ours !== undefined && theirs.digest !== ours.digest) {
      const about = `sha256:${tag.slice("sha256-".length, tag.lastIndexOf("."))}`;
      problems.push(`${registry.registry}/${target.targetRepository}:${tag} holds ${theirs.digest}, not the ${ours.digest} the source holds, and is never overwritten; fix: find out who wrote it (cosign tree ${registry.registry}/${target.targetRepository}@${about}); if it is not wanted, delete it, then promote again.`);
    }
  }
  return { source, unknown, problems };
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

  /** `signatures`: the gate's verified `.sig`/`.att` manifests by layer (checkPromotion); without a gate, the source's tags as the copy finds them. */
  constructor(name: string, args: { targets: readonly PromotionTarget[]; registry: string; immutable: boolean; signatures?: ReadonlyMap<string, Readonly<Record<string, string>>>; registryAuth?: pulumi.Output<{ username: string; password: string }> }, options?: pulumi.ComponentResourceOptions) {
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
        ...(args.signatures?.get(target.source.layer) === undefined ? {} : { signatures: { ...args.signatures.get(target.source.layer) } }),
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
