/**
 * An OCI image index over a layer's per-platform images (core/platform-targets.ts), put together inside
 * one registry without a daemon: each platform's manifest is copied by digest from its own
 * repository into the layer's (blobs mounted, bytes unchanged, so the digests stay), then the index
 * is put under the tag. The same images give the same index bytes, so the same digest: a rerun
 * writes nothing, and an immutable tag that already holds another index is never moved.
 */
import { formatPlatform, parsePlatform } from "../core/platforms.js";
import { sha256Digest } from "./blob-cache.js";
import { type ManifestResult, parseJson, type RegistryClient, RegistryError } from "./client.js";
import { confirmTag, copyManifest, isIndexManifest } from "./copy.js";

export const OCI_INDEX_TYPE = "application/vnd.oci.image.index.v1+json";

export interface IndexEntry {
  /** `os/arch[/variant]` */
  readonly platform: string;
  /** `group/image/os-arch`: where the per-platform image was pushed. */
  readonly repository: string;
  /** `sha256:…` of its manifest. */
  readonly digest: string;
}

export interface IndexRequest {
  /** `group/image`: the repository the tag is in. */
  readonly repository: string;
  readonly tag: string;
  readonly entries: readonly IndexEntry[];
  /** Refuse to move an existing tag to another digest. */
  readonly immutable: boolean;
}

export interface IndexResult {
  readonly digest: string;
  /** The tag did not hold this index before. */
  readonly created: boolean;
}

/** The index's bytes: fixed key order and no whitespace, so the same entries always give the same digest. */
export function indexBytes(entries: readonly { readonly platform: string; readonly mediaType: string; readonly digest: string; readonly size: number }[]): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX_TYPE,
    manifests: entries.map((entry) => ({ mediaType: entry.mediaType, digest: entry.digest, size: entry.size, platform: parsePlatform(entry.platform) })),
  }));
}

export async function putIndex(client: RegistryClient, request: IndexRequest): Promise<IndexResult> {
  const children = [];
  for (const entry of request.entries) {
    const raw = await client.rawManifest(entry.repository, entry.digest);
    const manifest = parseJson<ManifestResult["manifest"]>(raw.bytes, `the manifest of ${entry.repository}@${entry.digest}`);
    if (isIndexManifest(raw.mediaType, manifest)) throw new RegistryError(`${entry.repository}@${entry.digest} (${entry.platform}) is itself an index; an index entry must be one platform's image`);
    // The image must be for the platform its entry claims: a pull picks the entry by this field alone.
    // Its config is read from the manifest bytes just fetched (checked against the digest), not asked for again.
    const config = await client.configOf(entry.repository, { digest: entry.digest, mediaType: raw.mediaType, manifest });
    const expected = parsePlatform(entry.platform);
    if (config?.os !== expected.os || config.architecture !== expected.architecture || (expected.variant !== undefined && config.variant !== undefined && config.variant !== expected.variant)) {
      throw new RegistryError(`${entry.repository}@${entry.digest} was built for ${formatPlatform(config ?? {})}, not ${entry.platform}; the index would send ${entry.platform} hosts the wrong image`);
    }
    children.push({ entry, raw });
  }
  const bytes = indexBytes(children.map(({ entry, raw }) => ({ platform: entry.platform, mediaType: raw.mediaType, digest: entry.digest, size: raw.bytes.length })));
  const digest = sha256Digest(bytes);
  const existing = await client.manifest(request.repository, request.tag);
  if (existing !== undefined && existing.digest === digest) return { digest, created: false };
  if (existing !== undefined && request.immutable) {
    throw new RegistryError(`${request.repository}:${request.tag} already points at ${existing.digest}; an immutable channel will not move it to the index ${digest}`);
  }
  for (const { entry, raw } of children) await copyManifest(client, entry.repository, request.repository, raw, entry.digest);
  await client.putManifest(request.repository, request.tag, bytes, OCI_INDEX_TYPE);
  if (request.immutable) await confirmTag(client, request.repository, request.tag, digest);
  return { digest, created: true };
}
