/**
 * A registry in memory for unit tests of what reads and writes one (signing, attesting, promotion's
 * copies, ci-clean): blobs and manifests by repository, tags pointing at manifests, deletes by
 * digest as distribution v2 does them (every tag of the digest goes too), counters of what was
 * asked, and switches for the odd answer (a tag list that fails or leaves tags out, another writer).
 */
import { createHash } from "node:crypto";
import { type ImageConfig, type ManifestResult, type RegistryClient } from "../../src/registry/client.js";
import { readCosignManifest } from "../../src/core/cosign-format.js";
import { type SignatureRegistry } from "../../src/registry/signatures.js";

export const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

export class MemoryRegistry implements SignatureRegistry {
  readonly blobs = new Map<string, Buffer>();
  /** `repository@digest` → the manifest's bytes. */
  readonly manifests = new Map<string, Buffer>();
  /** `repository@digest` → the media type it was put with. */
  private readonly mediaTypes = new Map<string, string>();
  /** `repository:tag` → manifest digest. */
  readonly tagged = new Map<string, string>();
  /** Every delete, `repository@digest`, in order. */
  readonly deletes: string[] = [];
  /** Every manifest put, `repository:reference`, in order. */
  readonly writes: string[] = [];
  puts = 0;
  blobReads = 0;
  /** Reads of a manifest by digest (not by tag). */
  digestReads = 0;
  /** Runs after each manifest put, before the put returns (another writer, a registry losing a tag). */
  afterPut?: (repository: string, tag: string) => void;
  /** When set, the tag list fails the way a registry's 5xx makes the client throw. */
  tagListFails = false;
  /** Tags (`repository:tag`) the tag list leaves out while their manifests still answer (a list that is not whole). */
  readonly unlisted = new Set<string>();

  constructor(readonly registry = "registry.test:5000") {}

  /** As the client the code under test takes (the parts it calls are here). */
  get client(): RegistryClient {
    return this as unknown as RegistryClient;
  }

  /** Stores a manifest as it is (its blobs taken as present, their bytes unknown), tagged when a tag is given; its digest. */
  add(repository: string, tag: string | undefined, content: unknown, mediaType = OCI_MANIFEST): string {
    const bytes = Buffer.from(JSON.stringify(content));
    const digest = sha256(bytes);
    this.manifests.set(`${repository}@${digest}`, bytes);
    this.mediaTypes.set(`${repository}@${digest}`, mediaType);
    if (tag !== undefined) this.tagged.set(`${repository}:${tag}`, digest);
    const manifest = content as { config?: { digest: string }; layers?: { digest: string }[] };
    for (const blob of [manifest.config?.digest, ...(manifest.layers ?? []).map((layer) => layer.digest)]) {
      if (blob !== undefined && !this.blobs.has(`${repository}@${blob}`)) this.blobs.set(`${repository}@${blob}`, Buffer.alloc(0));
    }
    return digest;
  }

  /** Puts an image of these layers (bottom first) and its config (made at `created`) under `repository`, untagged; its digest. */
  addImage(repository: string, layers: readonly Buffer[], created = "2026-12-02T18:00:00Z"): string {
    const config = Buffer.from(JSON.stringify({ created, architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map(sha256) } }));
    for (const layer of layers) this.blobs.set(`${repository}@${sha256(layer)}`, layer);
    this.blobs.set(`${repository}@${sha256(config)}`, config);
    return this.add(repository, undefined, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", size: config.length, digest: sha256(config) }, layers: layers.map((layer) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", size: layer.length, digest: sha256(layer) })) });
  }

  async repositories(): Promise<string[]> {
    return [...new Set([...this.manifests.keys()].map((key) => key.slice(0, key.indexOf("@"))))].sort();
  }

  async tags(repository: string): Promise<string[]> {
    if (this.tagListFails) throw new Error(`GET the tag list of ${repository}: 503`);
    return [...this.tagged.keys()].filter((key) => key.startsWith(`${repository}:`) && !this.unlisted.has(key)).map((key) => key.slice(repository.length + 1)).sort();
  }

  private stored(repository: string, reference: string): { digest: string; bytes: Buffer; mediaType: string } | undefined {
    const digest = reference.startsWith("sha256:") ? reference : this.tagged.get(`${repository}:${reference}`);
    const bytes = digest === undefined ? undefined : this.manifests.get(`${repository}@${digest}`);
    if (digest === undefined || bytes === undefined) return undefined;
    return { digest, bytes, mediaType: this.mediaTypes.get(`${repository}@${digest}`) ?? "" };
  }

  async manifest(repository: string, reference: string): Promise<ManifestResult | undefined> {
    if (reference.startsWith("sha256:")) this.digestReads++;
    const found = this.stored(repository, reference);
    if (found === undefined) return undefined;
    return { digest: found.digest, mediaType: found.mediaType, manifest: JSON.parse(found.bytes.toString("utf8")) as ManifestResult["manifest"] };
  }

  async rawManifest(repository: string, reference: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const found = this.stored(repository, reference);
    if (found === undefined) throw new Error(`no manifest ${repository}@${reference}`);
    return { bytes: found.bytes, mediaType: found.mediaType };
  }

  async configOf(repository: string, found: ManifestResult): Promise<ImageConfig | undefined> {
    const bytes = this.blobs.get(`${repository}@${found.manifest.config?.digest ?? ""}`);
    return bytes === undefined ? undefined : JSON.parse(bytes.toString("utf8")) as ImageConfig;
  }

  /** Refuses a manifest whose blobs the repository does not hold, as a registry does. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType?: string): Promise<string> {
    const manifest = JSON.parse(bytes.toString("utf8")) as { mediaType?: string; config?: { digest: string }; layers?: { digest: string }[] };
    for (const blob of [manifest.config?.digest, ...(manifest.layers ?? []).map((layer) => layer.digest)]) {
      if (blob !== undefined && !this.blobs.has(`${repository}@${blob}`)) throw new Error(`test registry: blob ${blob} unknown in ${repository}`);
    }
    const digest = sha256(bytes);
    this.manifests.set(`${repository}@${digest}`, bytes);
    this.mediaTypes.set(`${repository}@${digest}`, mediaType ?? manifest.mediaType ?? "");
    if (!reference.startsWith("sha256:")) this.tagged.set(`${repository}:${reference}`, digest);
    this.puts++;
    this.writes.push(`${repository}:${reference}`);
    this.afterPut?.(repository, reference);
    return digest;
  }

  /** Like distribution v2: the manifest goes, and with it every tag of the repository that named it. */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    this.deletes.push(`${repository}@${digest}`);
    this.manifests.delete(`${repository}@${digest}`);
    for (const [key, held] of this.tagged) if (key.startsWith(`${repository}:`) && held === digest) this.tagged.delete(key);
  }

  async mountBlob(source: string, target: string, digest: string): Promise<void> {
    const bytes = this.blobs.get(`${source}@${digest}`);
    if (bytes === undefined) throw new Error(`no blob ${source}@${digest}`);
    this.blobs.set(`${target}@${digest}`, bytes);
  }

  async blobStream(repository: string, digest: string): Promise<ReadableStream<Uint8Array>> {
    const bytes = this.blobs.get(`${repository}@${digest}`);
    if (bytes === undefined) throw new Error(`test registry: no blob ${digest}`);
    this.blobReads++;
    return new Blob([new Uint8Array(bytes)]).stream();
  }

  /** How each blob upload was asked for: `unchecked` (no HEAD first) or not. */
  readonly uploads: boolean[] = [];
  /** An upload lands this many ms after it is asked for (the blobs of one write go up at once). */
  blobDelayMs = 0;

  async putBlob(repository: string, bytes: Buffer, options: { unchecked?: boolean } = {}): Promise<string> {
    this.uploads.push(options.unchecked === true);
    if (this.blobDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.blobDelayMs));
    this.blobs.set(`${repository}@${sha256(bytes)}`, bytes);
    return sha256(bytes);
  }

  /** The layers of the cosign manifest a tag holds, each with its blob's bytes. */
  layersOf(repository: string, tag: string): { mediaType: string; digest: string; annotations: Readonly<Record<string, string>>; blob: Buffer }[] {
    const digest = this.tagged.get(`${repository}:${tag}`);
    const read = readCosignManifest(JSON.parse(this.manifests.get(`${repository}@${digest ?? ""}`)?.toString("utf8") ?? "null"));
    if ("problem" in read) throw new Error(`test registry: ${repository}:${tag} ${read.problem}`);
    return read.layers.map((layer) => ({ ...layer, blob: this.blobs.get(`${repository}@${layer.digest}`) ?? Buffer.alloc(0) }));
  }
}
