/**
 * A registry in memory for unit tests of what reads and writes one (signing, attesting, ci-clean):
 * blobs and manifests by repository, tags pointing at manifests, deletes by digest as distribution
 * v2 does them (every tag of the digest goes too), and hooks for the odd answer.
 */
import { createHash } from "node:crypto";
import { type ManifestResult, type RegistryClient } from "../../src/registry/client.js";
import { readCosignManifest } from "../../src/core/cosign-format.js";
import { type SignatureRegistry } from "../../src/registry/signatures.js";

export const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

export class MemoryRegistry implements SignatureRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  /** `repository:tag` → manifest digest. */
  readonly tagged = new Map<string, string>();
  /** Every delete, `repository@digest`, in order. */
  readonly deletes: string[] = [];
  puts = 0;
  /** Runs after each manifest put, before the put returns (another writer, a registry losing a tag). */
  afterPut?: (repository: string, tag: string) => void;

  constructor(readonly registry = "registry.test:5000") {}

  /** As the client the code under test takes (the parts it calls are here). */
  get client(): RegistryClient {
    return this as unknown as RegistryClient;
  }

  async repositories(): Promise<string[]> {
    return [...new Set([...this.manifests.keys()].map((key) => key.slice(0, key.indexOf("@"))))].sort();
  }

  async tags(repository: string): Promise<string[]> {
    return [...this.tagged.keys()].filter((key) => key.startsWith(`${repository}:`)).map((key) => key.slice(repository.length + 1)).sort();
  }

  async manifest(repository: string, reference: string): Promise<ManifestResult | undefined> {
    const digest = reference.startsWith("sha256:") ? reference : this.tagged.get(`${repository}:${reference}`);
    const bytes = digest === undefined ? undefined : this.manifests.get(`${repository}@${digest}`);
    if (digest === undefined || bytes === undefined) return undefined;
    const manifest = JSON.parse(bytes.toString("utf8")) as ManifestResult["manifest"];
    return { digest, mediaType: manifest.mediaType ?? "", manifest };
  }

  async putManifest(repository: string, reference: string, bytes: Buffer): Promise<string> {
    const manifest = JSON.parse(bytes.toString("utf8")) as { config?: { digest: string }; layers?: { digest: string }[] };
    for (const blob of [manifest.config?.digest, ...(manifest.layers ?? []).map((layer) => layer.digest)]) {
      if (blob !== undefined && !this.blobs.has(`${repository}@${blob}`)) throw new Error(`test registry: blob ${blob} unknown in ${repository}`);
    }
    const digest = sha256(bytes);
    this.manifests.set(`${repository}@${digest}`, bytes);
    if (!reference.startsWith("sha256:")) this.tagged.set(`${repository}:${reference}`, digest);
    this.puts++;
    this.afterPut?.(repository, reference);
    return digest;
  }

  /** Like distribution v2: the manifest goes, and with it every tag of the repository that named it. */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    this.deletes.push(`${repository}@${digest}`);
    this.manifests.delete(`${repository}@${digest}`);
    for (const [key, held] of this.tagged) if (key.startsWith(`${repository}:`) && held === digest) this.tagged.delete(key);
  }

  async blobStream(repository: string, digest: string): Promise<ReadableStream<Uint8Array>> {
    const bytes = this.blobs.get(`${repository}@${digest}`);
    if (bytes === undefined) throw new Error(`test registry: no blob ${digest}`);
    return new ReadableStream({ start: (controller) => { controller.enqueue(new Uint8Array(bytes)); controller.close(); } });
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

  layersOf(repository: string, tag: string): { mediaType: string; digest: string; annotations: Readonly<Record<string, string>> }[] {
    const digest = this.tagged.get(`${repository}:${tag}`);
    const read = readCosignManifest(JSON.parse(this.manifests.get(`${repository}@${digest ?? ""}`)?.toString("utf8") ?? "null"));
    if ("problem" in read) throw new Error(`test registry: ${repository}:${tag} ${read.problem}`);
    return read.layers;
  }
}
