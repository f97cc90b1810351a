/**
 * Copies of an image by digest inside one registry, without a daemon, and the rules a copy keeps:
 * an immutable tag is never moved, a CI tag may be written unchecked, annotations give a copy a
 * digest of its own. The requests themselves are the client's (client.ts).
 */
import { mapLimited } from "../core/concurrency.js";
import { holdersIn } from "../core/ci-build.js";
import { attestationTag, cosignTagSubject, signatureTag } from "../core/cosign-format.js";
import { sha256Digest } from "./blob-cache.js";
import { type ManifestResult, type RegistryClient, RegistryError } from "./client.js";

export interface CopyRequest {
  readonly sourceRepository: string;
  /** `sha256:…` of the manifest to copy. */
  readonly digest: string;
  readonly targetRepository: string;
  readonly tag: string;
  /** Refuse to move an existing tag to another digest. */
  readonly immutable: boolean;
  /**
   * Added to the top-level manifest: the copy then has a digest of its own (same config and
   * layers, so the same image). Set for CI copies, so that deleting one later, which a
   * distribution v2 registry can only do by digest, never takes the channel's tag with it.
   */
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Write the tag without asking first what it holds: for tags that only this copy writes (a CI
   * run's, one per change and patchset), where putting the same bytes again changes nothing.
   * Not with `immutable`, which needs the answer.
   */
  readonly unchecked?: boolean;
  /**
   * Copy cosign's `.sig`/`.att` tags of the digest (and of an index's platform images) with it,
   * before the image's tag, so the promoted ref verifies with plain cosign (copyCosignTags).
   */
  readonly copySignatures?: boolean;
  /** With copySignatures: copy exactly these `.sig`/`.att` manifests (tag → digest), the ones the promotion gate verified. */
  readonly signatures?: Readonly<Record<string, string>>;
}

export interface CopyResult {
  /** The target tag did not point at this digest before the copy (an unchecked copy: true). */
  readonly created: boolean;
  /** `sha256:…` of the manifest under the tag: the source digest, or the annotated copy's own. */
  readonly digest: string;
}

const INDEX_TYPES: ReadonlySet<string> = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);

/**
 * Whether a manifest is an index (one image per platform), from its own bytes first: the media type
 * they name, else whether they list `manifests`; the registry's Content-Type only when the bytes
 * name no type. A registry that adds parameters to the header (`; charset=utf-8`) or sends none
 * must not make an index look like an image: the promotion gate would then skip its platform images.
 */
export function isIndexManifest(contentType: string, manifest: Readonly<Record<string, unknown>>): boolean {
  if (Array.isArray(manifest.manifests)) return true;
  const named = typeof manifest.mediaType === "string" ? manifest.mediaType : contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return INDEX_TYPES.has(named);
}

/**
 * Copies an image by digest inside one registry without a daemon: every blob
 * is mounted across repositories (or streamed when the registry will not
 * mount; nothing at all inside one repository), then the manifest bytes are
 * put under the tag unchanged, so the target digest equals the source digest,
 * or with annotations added, so it has its own.
 */
export async function copyImage(client: RegistryClient, request: CopyRequest): Promise<CopyResult> {
  // Without annotations the copy's digest is the source's: the tag can be checked before anything
  // is read (an adoption, whose tag already holds it, is one request). With them, the source's bytes
  // decide the copy's digest, so they come first.
  let copy: { bytes: Buffer; mediaType: string } | undefined;
  if (request.annotations !== undefined) {
    const source = await client.rawManifest(request.sourceRepository, request.digest);
    copy = { bytes: annotated(source.bytes, request.annotations), mediaType: source.mediaType };
  }
  const digest = copy === undefined ? request.digest : sha256Digest(copy.bytes);
  if (request.unchecked === true && request.immutable) throw new RegistryError(`${request.targetRepository}:${request.tag}: an immutable tag is never written unchecked`);
  const existing = request.unchecked === true ? undefined : await client.manifest(request.targetRepository, request.tag);
  if (existing !== undefined && existing.digest !== digest && request.immutable) {
    throw new RegistryError(`${request.targetRepository}:${request.tag} already points at ${existing.digest}; an immutable channel will not move it to ${digest}`);
  }
  // Before the image's tag, and also when that tag is there already (promoted before signatures
  // travelled): a tag users pull never appears before the signatures that let them verify it.
  if (request.copySignatures === true) await copyCosignTags(client, request.sourceRepository, request.targetRepository, request.digest, request.signatures);
  if (existing !== undefined && existing.digest === digest) return { created: false, digest };
  copy ??= await client.rawManifest(request.sourceRepository, request.digest);
  await copyManifest(client, request.sourceRepository, request.targetRepository, copy, request.tag);
  if (request.immutable) await confirmTag(client, request.targetRepository, request.tag, digest);
  return { created: true, digest };
}

/**
 * cosign's classic tags (`sha256-<hex>.sig`, `.att`) of `digest` and, for an index, of each of its
 * platform images, copied from `source` to `target` like an image: blobs mounted, manifest bytes
 * unchanged, under the same tag. A tag the source lacks is skipped (an unsigned channel promotes as
 * before; the promotion gate has refused an unsigned image already where a policy asks for one). A
 * target tag holding other bytes is refused, never overwritten: it holds signatures someone else
 * wrote, and replacing them would drop those. Copies nothing when everything is there already.
 * With `verified` (the promotion gate's: tag → the manifest digest it verified), exactly those are
 * copied, by digest, so a source tag rewritten after the gate never reaches the target.
 */
export async function copyCosignTags(client: RegistryClient, source: string, target: string, digest: string, verified?: Readonly<Record<string, string>>): Promise<{ copied: string[] }> {
  if (source === target) return { copied: [] };
  // The manifests to copy, by tag: the ones the gate verified (read by digest: what the source's
  // tags hold now does not matter), else what the source's tags hold.
  const wanted = new Map<string, string>();
  if (verified !== undefined) {
    for (const [tag, manifest] of Object.entries(verified)) wanted.set(tag, manifest);
  } else {
    const image = await client.rawManifest(source, digest);
    const body = JSON.parse(image.bytes.toString("utf8")) as { mediaType?: unknown; manifests?: { digest: string }[] };
    const children = isIndexManifest(image.mediaType, body) ? (body.manifests ?? []).map((child) => child.digest) : [];
    for (const about of [digest, ...children]) {
      for (const tag of [signatureTag(about), attestationTag(about)]) {
        const found = await client.manifest(source, tag);
        if (found !== undefined) wanted.set(tag, found.digest);
      }
    }
  }
  const copied: string[] = [];
  for (const [tag, manifest] of wanted) {
    const existing = await client.manifest(target, tag);
    if (existing?.digest === manifest) continue;
    if (existing !== undefined) {
      throw new RegistryError(`${target}:${tag} already holds ${existing.digest}, not the signatures ${source}:${tag} holds (${manifest}); it is refused, not overwritten, since that would drop whatever it holds. Fix: find out who wrote ${target}:${tag} (cosign tree ${client.registry}/${target}@${cosignTagSubject(tag)}); if it is not wanted, delete it and promote again`, undefined, "a cosign tag that holds other signatures");
    }
    // By digest: a manifest the source no longer has fails here, and nothing else is put in its place.
    await copyManifest(client, source, target, await client.rawManifest(source, manifest), tag);
    await confirmTag(client, target, tag, manifest);
    copied.push(tag);
  }
  return { copied };
}

/** Manifest bytes with annotations merged in (serialised the same way every time: same input, same digest). */
function annotated(bytes: Buffer, annotations: Readonly<Record<string, string>>): Buffer {
  const manifest = JSON.parse(bytes.toString("utf8")) as { annotations?: Record<string, string> };
  return Buffer.from(JSON.stringify({ ...manifest, annotations: { ...manifest.annotations, ...annotations } }, null, 3));
}

/** Puts a manifest's bytes into `target` under `reference` (a tag or its digest), its blobs (or an index's manifests) first. */
export async function copyManifest(client: RegistryClient, source: string, target: string, raw: { bytes: Buffer; mediaType: string }, reference: string): Promise<void> {
  const { bytes, mediaType } = raw;
  const manifest = JSON.parse(bytes.toString("utf8")) as { mediaType?: unknown; config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
  if (isIndexManifest(mediaType, manifest)) {
    for (const child of manifest.manifests ?? []) await copyManifest(client, source, target, await client.rawManifest(source, child.digest), child.digest);
  } else if (source !== target) {
    const blobs = [manifest.config?.digest, ...(manifest.layers ?? []).map((layer) => layer.digest)].filter((blob): blob is string => blob !== undefined);
    for (const blob of blobs) await client.mountBlob(source, target, blob);
  }
  // putManifest checks what the registry says it stored against the bytes' digest.
  await client.putManifest(target, reference, bytes, mediaType);
}

/**
 * After an immutable tag was written: does it hold what was written? A distribution registry has no
 * conditional put, so two runs that both found the tag absent may both write it; the one whose
 * digest is not there afterwards lost, and says so rather than report a tag it does not hold. The
 * stack lock keeps two runs of one stack apart; this covers two stacks (or a run without the lock)
 * writing one tag.
 */
export async function confirmTag(client: RegistryClient, repository: string, tag: string, digest: string): Promise<void> {
  const now = await client.manifest(repository, tag);
  if (now?.digest === digest) return;
  if (now === undefined) {
    throw new RegistryError(`${repository}:${tag} was written as ${digest}, but the registry now answers that the tag does not exist: it does not hold what it just accepted (its storage, or something between, is not answering truly). An immutable tag is not written again: check the registry, then run again`, undefined, "a tag just written that the registry no longer answers for");
  }
  throw new RegistryError(`${repository}:${tag} was written as ${digest}, but the registry now answers that it holds ${now.digest}: another run wrote it at the same time (a registry has no conditional put). An immutable tag is not written again: check which run's image it should hold`, undefined, "a tag written by another run at the same time");
}

/**
 * The manifest a listed tag holds; undefined when the tag was deleted since the list was read. A
 * tag the list, read again, still names while its manifest answers "not found" is an error: the
 * registry's answers disagree, and a delete that took the tag for empty could take what it holds.
 */
export async function listedTagManifest(client: Pick<RegistryClient, "registry" | "tags" | "manifest">, repository: string, tag: string): Promise<ManifestResult | undefined> {
  const found = await client.manifest(repository, tag);
  if (found !== undefined) return found;
  if ((await client.tags(repository)).includes(tag)) {
    throw new RegistryError(`${repository}:${tag} is in the tag list of ${repository} at ${client.registry}, read twice, but its manifest answers "not found": the registry's answers disagree, so Strata cannot tell which manifest the tag holds, and deletes nothing more; check the registry (its storage, or a proxy in front of it), then run again`, 404, "a listed tag whose manifest is not found", "malformed");
  }
  return undefined;
}

/**
 * Of `expected` (tags a delete relies on), those a list just read leaves out because they are
 * gone (404). One the registry still answers for means the list is not whole: an error, whose
 * message ends with what the caller then cannot tell (`cannotTell`).
 */
async function goneFromList(client: Pick<RegistryClient, "registry" | "manifest">, repository: string, listed: readonly string[], expected: readonly string[], cannotTell: string): Promise<string[]> {
  const unlisted = [...new Set(expected)].filter((tag) => !listed.includes(tag));
  for (const tag of unlisted) {
    const now = await client.manifest(repository, tag);
    if (now !== undefined) throw new RegistryError(`the tag list of ${repository} at ${client.registry} leaves out ${tag}, which the registry answers for (${now.digest}): the list is not whole, so Strata cannot tell ${cannotTell}; check the registry (its storage, or a proxy in front of it), then run again`, undefined, "a tag list that leaves out a tag the registry answers for", "malformed");
  }
  return unlisted;
}

/** Cosign tags in the order a delete takes them: the `.att` (the provenance, what shows whose an image is) last. */
export function provenanceLast<T extends { readonly tag: string }>(signatures: readonly T[]): T[] {
  const last = (tag: string): number => (tag.endsWith(".att") ? 1 : 0);
  return [...signatures].sort((a, b) => last(a.tag) - last(b.tag));
}

/**
 * What `listed` (a repository's tags but `except`) hold: each manifest a tag holds, and each image
 * an index under a tag lists, with every such tag as a message names it. Cosign's tags count
 * too: a signature manifest is held by its tag, and one that names another digest's `sha256-…`
 * is not thereby shown to be garbage. A delete by digest would take a holder's tag with it, or
 * break its index.
 */
async function holdings(client: Pick<RegistryClient, "registry" | "tags" | "manifest">, repository: string, listed: readonly string[], except?: string): Promise<Map<string, string[]>> {
  const others = listed.filter((other) => other !== except);
  const held = await mapLimited(others, 8, (other) => listedTagManifest(client, repository, other));
  const tags = others.flatMap((tag, at) => {
    const manifest = held[at];
    return manifest === undefined ? [] : [{ repository, tag, digest: manifest.digest, children: (manifest.manifest.manifests ?? []).map((entry) => entry.digest) }];
  });
  // Keyed by digest alone: every tag here is of this one repository.
  return new Map([...holdersIn(tags)].map(([key, holders]) => [key.slice(repository.length + 1), holders]));
}

/**
 * Removes a copy's tag the only way a distribution v2 registry allows, by deleting its manifest by
 * digest; unless another tag of the repository holds that manifest too, which the delete would take
 * with it (a version bumped over unchanged content), or holds an index that lists it (a layer made
 * multi-platform over an unchanged image), which the delete would break. Then the tag stays
 * (`keptFor` names the other). A tag list or a manifest the registry does not answer stops it (the
 * client throws), and so does a list that leaves out the copy's own tag while the registry still
 * answers for it (not the whole list), or names a tag whose manifest is "not found" (listedTagManifest):
 * nothing is deleted that is not shown to be this tag's alone. A tag already gone is left so
 * (`gone`): with it gone, the list cannot be checked against it.
 *
 * What the manifest leaves behind goes after it, as `strata ci-clean` takes a change's: an index's
 * platform images and the cosign tags (`.sig`, `.att`) of each manifest deleted, which would be
 * about an image the repository no longer holds; each only when no tag or index holds it once the
 * copy is gone (the tags are read again then: another run may have written one meanwhile). The copy
 * goes first, so a tag users pull never holds an index whose images, or an image whose signatures,
 * are gone. A delete stopped after the copy leaves the rest as garbage, never a broken tag: its next
 * try finds the tag gone and deletes nothing more.
 */
export async function deleteCopy(client: RegistryClient, repository: string, tag: string, digest: string): Promise<{ deleted: boolean; keptFor?: string; gone?: true; platformImages?: readonly string[]; signatures?: readonly string[] }> {
  const listed = await client.tags(repository);
  if ((await goneFromList(client, repository, listed, [tag], `which other tags hold ${digest}, and deletes nothing`)).length > 0) return { deleted: false, gone: true };
  const own = await listedTagManifest(client, repository, tag);
  if (own === undefined) return { deleted: false, gone: true };
  // The copy's own tag is not asked while it holds the copy: a layer that a stack moving from
  // promoting to building adopts under the same tag is the same resource, updated, never deleted
  // (pulumi/tree.ts adopt's alias). A tag another run has since moved holds what it holds now.
  const keptFor = (await holdings(client, repository, listed, own.digest === digest ? tag : undefined)).get(digest)?.[0];
  if (keptFor !== undefined) return { deleted: false, keptFor };
  const copy = own.digest === digest ? own : await client.manifest(repository, digest);
  await client.deleteManifest(repository, digest);

  // What it alone held, asked again with the copy gone; a list that is not whole deletes nothing more.
  const listedAfter = await client.tags(repository);
  await goneFromList(client, repository, listedAfter, listed.filter((other) => other !== tag), `whether a tag holds what ${digest} held, and deletes nothing more`);
  const holders = await holdings(client, repository, listedAfter);
  const platformImages = (copy?.manifest.manifests ?? []).map((entry) => entry.digest).filter((child) => !holders.has(child));
  for (const platformImage of platformImages) await client.deleteManifest(repository, platformImage);
  const signatures: { tag: string; digest: string }[] = [];
  for (const subject of [...(holders.has(digest) ? [] : [digest]), ...platformImages]) {
    for (const cosignTag of [signatureTag(subject), attestationTag(subject)]) {
      // Asked by name, not looked for in the list: one the list leaves out is not left behind. A
      // manifest another tag holds, or an index lists, is not the copy's (a tag of its name pointed
      // at a release's image or signatures would take them).
      const found = await client.manifest(repository, cosignTag);
      if (found !== undefined && (holders.get(found.digest) ?? []).every((holder) => holder === cosignTag)) signatures.push({ tag: cosignTag, digest: found.digest });
    }
  }
  for (const signature of provenanceLast(signatures)) await client.deleteManifest(repository, signature.digest);
  return { deleted: true, platformImages, signatures: provenanceLast(signatures).map((signature) => signature.tag) };
}

/**
 * Deletes an image `strata ci-clean` found with no tag (a later run of its CI tag wrote over it)
 * and showed to be the change's, then its cosign tags; unless a tag or an index of its repository
 * holds it now (a run pushed the same bytes since the clean-up listed the group), when nothing is
 * deleted and the holder is returned; else the cosign tags it deleted. `firstListed`: the repository's tags when the group was
 * listed; each the list read now leaves out must be gone (404), or the list is not whole and a tag
 * holding the image could hide in what it left out. When its cosign tags are all gone (another
 * clean-up took them), nothing is deleted. The image goes first and its provenance last (`.sig`,
 * then `.att`): the signatures are what finds it, and the provenance what shows it is the
 * change's, so a clean-up stopped on the way finds the rest when run again.
 */
export async function deleteOrphan(
  client: RegistryClient,
  orphan: { readonly repository: string; readonly subject: string; readonly signatures: readonly { readonly tag: string; readonly digest: string }[] },
  firstListed: readonly string[],
  stop?: AbortSignal,
): Promise<{ deleted: readonly string[] } | { keptFor: string } | { gone: true }> {
  const listed = await client.tags(orphan.repository);
  const unlisted = await goneFromList(client, orphan.repository, listed, [...firstListed, ...orphan.signatures.map((signature) => signature.tag)], `whether a tag holds ${orphan.subject} again, and deletes nothing more`);
  if (orphan.signatures.every((signature) => unlisted.includes(signature.tag))) return { gone: true };
  const holders = await holdings(client, orphan.repository, listed);
  // Held itself, or one of its signature manifests held by another tag or listed by an index (a
  // `.sig` tag made to point at a release's image): deleting by digest would take that too.
  const keptFor = holders.get(orphan.subject)?.[0]
    ?? orphan.signatures.flatMap((signature) => (holders.get(signature.digest) ?? []).filter((holder) => holder !== signature.tag).map((holder) => `${holder} (it holds the manifest of ${signature.tag})`))[0];
  if (keptFor !== undefined) return { keptFor };
  stop?.throwIfAborted();
  await client.deleteManifest(orphan.repository, orphan.subject);
  // Those another clean-up took already (not found above) are not deleted again, nor said deleted.
  // A stop between them leaves the signatures, which find the rest next time (they go last for that).
  const signatures = provenanceLast(orphan.signatures.filter((signature) => !unlisted.includes(signature.tag)));
  for (const signature of signatures) {
    stop?.throwIfAborted();
    await client.deleteManifest(orphan.repository, signature.digest);
  }
  return { deleted: signatures.map((signature) => signature.tag) };
}
