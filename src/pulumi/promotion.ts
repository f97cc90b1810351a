/**
 * The Pulumi shell of promotion: read the source channel's stack outputs and
 * declare one PromotedImage (a server-side copy by digest) per layer.
 */
import * as pulumi from "@pulumi/pulumi";
import { PromotedImage } from "./copied-image.js";
import { PROMOTION_TYPE } from "../core/image-types.js";
import { gateTargets, type IndexChild, promotionRefusals, type PromotionTarget, type SourceLayer } from "../core/promotion-plan.js";
import { type TrustInput, type VerifyOptions, verifyImages } from "../engine/image-verify.js";
import { type RegistryClient } from "../registry/client.js";
import { isIndexManifest } from "../registry/copy.js";
import { attestationTag, cosignTagSubject, signatureTag } from "../core/cosign-format.js";
import { admitParentsFirst, NESTED_INDEX_FIX } from "../core/trust-verdict.js";
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
 * image whose manifest the registry does not give (or an index one of whose platform images it does
 * not give) is refused too, as is one that is still to be
 * copied whose `.sig`/`.att` the target repository holds with other bytes already (the copy would
 * refuse to overwrite them, after the images before it were copied): a gate that passes leaves the
 * copies nothing to refuse. `signatures`: by layer, the `.sig`/`.att` manifests it verified
 * (tag → digest) that the copy is to carry; every layer has an entry, so no copy reads the source's
 * tags itself. An image the target holds under its tag already is verified again, and its copy
 * carries only the cosign tags the target lacks: a signature added on the source since it was
 * promoted neither reaches the channel nor refuses the promotion. `verify` is cosign's
 * verification (image-verify.ts; `cosign`: its binary, and the stack's registry login when it has
 * one, which cosign needs as Strata's client does); tests give their own.
 */
export async function checkPromotion(
  targets: readonly PromotionTarget[],
  registry: RegistryClient,
  trust: TrustInput & { readonly reviewed: NonNullable<TrustInput["reviewed"]> },
  cosign: Pick<VerifyOptions, "cosignBinary" | "registryLogin">,
  verify: typeof verifyImages = verifyImages,
): Promise<{ refusals: string[]; total: number; signatures: ReadonlyMap<string, Readonly<Record<string, string>>> }> {
  // The type says so too; checked as it runs, since without it every image would read "not checked", admitted.
  if (trust.reviewed === undefined) throw new Error("checkPromotion needs the trust policy's reviewed ref, read (readReviewedTip)");
  /** The opening of an image's refusal paragraph: which layer and image. */
  const refused = (target: PromotionTarget): string => `${target.source.layer} ${registry.registry}/${target.sourceRepository}@${target.digest} is refused: `;
  /** The fix for an image gone from the source: the state there still records it, so only a new version publishes it again. */
  const republish = (target: PromotionTarget): string => `publish the layer again as a new version on the channel that builds it (strata bump --stack <that channel> --minor ${target.source.layer}, then strata up there), then promote it along again.`;
  const children = new Map<string, IndexChild[]>();
  // An image whose manifests the registry would not give is refused like any other, in its own
  // paragraph, and the others are still verified: every refusal is said at once.
  const unread = new Map<PromotionTarget, string>();
  const promoted = new Set<PromotionTarget>();
  /** The platform images each unread index names: not verified either (what a refusal of an image built on one says). */
  const unreadEntries = new Set<string>();
  const unreadIndex = (target: PromotionTarget, entries: readonly IndexChild[], paragraph: string): void => {
    for (const entry of entries) unreadEntries.add(entry.digest);
    unread.set(target, paragraph);
  };
  for (const target of targets) {
    let found: Awaited<ReturnType<RegistryClient["manifest"]>>;
    let held: Awaited<ReturnType<RegistryClient["manifest"]>>;
    try {
      [found, held] = await Promise.all([registry.manifest(target.sourceRepository, target.digest), registry.manifest(target.targetRepository, target.tag)]);
    } catch (error) {
      unread.set(target, `${refused(target)}the registry did not say whether it is an image or an index, or what ${target.targetRepository}:${target.tag} holds, so its signatures could not be checked (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
      continue;
    }
    if (held?.digest === target.digest) promoted.add(target);
    // Not left to cosign: given a digest reference it reads only the `.sig`/`.att` tags, never the
    // manifest, so it would admit a digest the registry does not hold (and an index's platform
    // images, which only the manifest names, would go unverified).
    if (found === undefined) {
      unread.set(target, `${refused(target)}the registry holds no such manifest (HTTP 404), so what would be copied cannot be verified; fix: the source channel's output names an image that is gone from ${target.sourceRepository} — find out what deleted it (the registry's log), ${republish(target)}`);
      continue;
    }
    if (!isIndexManifest(found.mediaType, found.manifest)) continue;
    const entries = (found.manifest.manifests ?? []).map((entry) => ({
      digest: entry.digest,
      platform: [entry.platform?.os ?? "unknown", entry.platform?.architecture ?? "unknown", ...(entry.platform?.variant === undefined ? [] : [entry.platform.variant])].join("/"),
    }));
    // Each platform image read too, for the same reason: one that is gone would pass cosign and
    // then stop the copy, after the layers before it were copied.
    // And one that is an index itself: its own images would be copied without being verified.
    let gone: IndexChild[];
    let nested: IndexChild[];
    try {
      const read = await mapLimited(entries, CHECK_CONCURRENCY, async (entry) => ({ entry, found: await registry.manifest(target.sourceRepository, entry.digest) }));
      gone = read.flatMap(({ entry, found: child }) => (child === undefined ? [entry] : []));
      nested = read.flatMap(({ entry, found: child }) => (child !== undefined && isIndexManifest(child.mediaType, child.manifest) ? [entry] : []));
    } catch (error) {
      unreadIndex(target, entries, `${refused(target)}the registry did not say whether it holds the platform images this index names, so what would be copied could not be checked (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
      continue;
    }
    if (gone.length > 0) {
      unreadIndex(target, entries, `${refused(target)}the index names ${gone.map((entry) => `a ${entry.platform} image ${entry.digest}`).join(" and ")} that the registry does not hold (HTTP 404), so it cannot be verified or copied; fix: find out what deleted it (the registry's log), ${republish(target)}`);
      continue;
    }
    if (nested.length > 0) {
      unreadIndex(target, entries, `${refused(target)}the index names ${nested.map((entry) => `a ${entry.platform} entry ${entry.digest}`).join(" and ")} that is an index itself, whose images Strata does not verify (it verifies the images an index names, not those of an index inside it), so they would be copied unverified; fix: ${NESTED_INDEX_FIX}.`);
      continue;
    }
    children.set(target.digest, entries);
  }
  const readable = targets.filter((target) => !unread.has(target));
  const tagsOf = (target: PromotionTarget): string[] => [target.digest, ...(children.get(target.digest) ?? []).map((child) => child.digest)].flatMap((about) => [signatureTag(about), attestationTag(about)]);
  const before = await mapLimited(readable, CHECK_CONCURRENCY, (target) => readCosignTags(registry, target, tagsOf(target)));
  // Each image with the image it was built on: one the gate could not read is not verified either.
  const verdicts = admitParentsFirst(await verify(gateTargets(readable, registry.registry, children), trust, { ...cosign, signatureReader: registry }), new Set([...[...unread.keys()].map((target) => target.digest), ...unreadEntries]));
  // Read again: what cosign verified is what the source's tags held both before and after it ran,
  // and that, by digest, is what the copy carries (copyCosignTags). A tag that moved meanwhile
  // cannot be told apart from a swap, so the image is refused.
  const after = await mapLimited(readable, CHECK_CONCURRENCY, (target) => readCosignTags(registry, target, tagsOf(target)));
  const refusals = [...unread.values(), ...promotionRefusals(verdicts)];
  const signatures = new Map<string, Record<string, string>>();
  readable.forEach((target, at) => {
    const was = before[at] as CosignTags;
    const now = after[at] as CosignTags;
    const found = [...was.errors, ...now.errors.filter((error) => !was.errors.includes(error))];
    // What its copy carries: each source tag the target lacks, unchanged over both reads. A target
    // tag with other bytes refuses an image still to copy. An image the target holds under its tag
    // already keeps whatever cosign tags the target holds, in any form, unread: a signature added on
    // the source since it was promoted (even while cosign ran) neither refuses the promotion nor
    // reaches the channel; only the tags it lacks (promoted before signatures travelled) are carried.
    const carried: Record<string, string> = {};
    for (const tag of tagsOf(target)) {
      // A tag the registry did not answer for is an error above already, not a change.
      if (was.unknown.has(tag) || now.unknown.has(tag)) continue;
      if (promoted.has(target) && (was.target.has(tag) || now.target.has(tag))) continue;
      const ours = was.source.get(tag);
      // Any source tag that moved (appeared, went, changed) while cosign ran: what it verified is not known.
      if (now.source.get(tag) !== ours) {
        found.push(`${registry.registry}/${target.sourceRepository}:${tag} changed while it was verified (${ours ?? "absent"}, then ${now.source.get(tag) ?? "absent"}), so what was verified is not known to be what would be copied; fix: promote again, and if it keeps changing, find out what writes the source channel's signatures.`);
        continue;
      }
      if (ours === undefined) continue;
      // The target's, in either read: other bytes there would make the copy refuse, after others were made.
      const theirs = [was.target.get(tag), now.target.get(tag)].find((held) => held !== undefined && held !== ours);
      if (theirs !== undefined) {
        found.push(`${registry.registry}/${target.targetRepository}:${tag} holds ${theirs}, not the ${ours} the source holds, and is never overwritten; fix: find out who wrote it (cosign tree ${registry.registry}/${target.targetRepository}@${cosignTagSubject(tag)}); if it is not wanted, delete it, then promote again.`);
        continue;
      }
      if (was.target.get(tag) === ours && now.target.get(tag) === ours) continue;
      carried[tag] = ours;
    }
    signatures.set(target.source.layer, carried);
    if (found.length === 0) return;
    // One paragraph an image: these join the paragraph cosign's checks gave it, if any.
    const opening = refused(target);
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
  /** The same tags in the target repository. */
  readonly target: Map<string, string>;
  /** Tags the registry did not answer for. */
  readonly unknown: Set<string>;
  /** Why: each as `what; fix: …`. */
  readonly errors: string[];
}

/**
 * The `.sig`/`.att` tags of an image (and of an index's platform images) in the source and the
 * target repositories. A registry that does not answer is an error (what would be copied, or
 * refused, is then not known).
 */
async function readCosignTags(registry: RegistryClient, target: PromotionTarget, tags: readonly string[]): Promise<CosignTags> {
  const source = new Map<string, string>();
  const held = new Map<string, string>();
  const unknown = new Set<string>();
  const errors: string[] = [];
  for (const tag of tags) {
    try {
      const [theirs, ours] = await Promise.all([registry.manifest(target.targetRepository, tag), registry.manifest(target.sourceRepository, tag)]);
      if (ours !== undefined) source.set(tag, ours.digest);
      if (theirs !== undefined) held.set(tag, theirs.digest);
    } catch (error) {
      unknown.add(tag);
      errors.push(`the registry did not say what ${target.sourceRepository}:${tag} and ${target.targetRepository}:${tag} hold, so what would be copied is not known (${(error as Error).message}); fix: make sure the registry answers, then promote again.`);
    }
  }
  return { source, target: held, unknown, errors };
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
        // With a gate, a layer it gave nothing for carries nothing: no copy reads the source's tags itself.
        ...(args.signatures === undefined ? {} : { signatures: { ...args.signatures.get(target.source.layer) } }),
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
