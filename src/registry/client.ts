/**
 * A small client for the OCI distribution API (registry v2): enough to list
 * what a registry holds, read an image's config and copy images by digest.
 * Like Docker, it speaks HTTPS, and falls back to plain HTTP only for
 * loopback registries. Credentials (HTTP basic, as htpasswd registries use)
 * come from the caller or, failing that, from the Docker config file.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { type BlobCache, sha256Digest } from "./blob-cache.js";

const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

export interface RegistryOptions {
  /** `host[:port]` */
  readonly registry: string;
  /** Forces a scheme; by default HTTPS, with HTTP as a fallback on loopback. */
  readonly scheme?: "http" | "https";
  readonly credentials?: RegistryCredentials;
  readonly fetch?: typeof fetch;
  /** Where to look for a Docker config file (default: $DOCKER_CONFIG or ~/.docker). */
  readonly dockerConfigDir?: string;
  /** Manifests and configs already read, by digest (blob-cache.ts); none: every read is a request. */
  readonly blobCache?: BlobCache;
}

export interface ManifestResult {
  /** The registry's `Docker-Content-Digest`. */
  readonly digest: string;
  readonly mediaType: string;
  readonly manifest: { readonly config?: { readonly digest: string }; readonly layers?: readonly { readonly digest: string }[] };
}

export interface ImageConfig {
  readonly config?: { readonly Labels?: Readonly<Record<string, string>> | null };
}

export class RegistryError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = "RegistryError";
  }
}

/** `auths[registry].auth` of a Docker config file (what `docker login` writes), if any. */
export function dockerConfigAuth(registry: string, configDir = process.env.DOCKER_CONFIG ?? path.join(homedir(), ".docker")): string | undefined {
  const file = path.join(configDir, "config.json");
  if (!existsSync(file)) return undefined;
  try {
    const config = JSON.parse(readFileSync(file, "utf8")) as { auths?: Record<string, { auth?: string }> };
    return config.auths?.[registry]?.auth ?? config.auths?.[`https://${registry}`]?.auth;
  } catch {
    return undefined;
  }
}

export class RegistryClient {
  readonly registry: string;
  private readonly loopback: boolean;
  private readonly fetcher: typeof fetch;
  private readonly authorization?: string;
  private readonly blobCache?: BlobCache;
  private scheme?: "http" | "https";

  constructor(options: RegistryOptions) {
    this.registry = options.registry;
    const host = options.registry.replace(/:\d+$/, "");
    this.loopback = host === "localhost" || host.startsWith("127.") || host === "[::1]";
    this.fetcher = options.fetch ?? fetch;
    if (options.scheme !== undefined) this.scheme = options.scheme;
    const basic = options.credentials === undefined
      ? dockerConfigAuth(options.registry, options.dockerConfigDir)
      : Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString("base64");
    if (basic !== undefined) this.authorization = `Basic ${basic}`;
    if (options.blobCache !== undefined) this.blobCache = options.blobCache;
  }

  private get base(): string {
    return `${this.scheme ?? "https"}://${this.registry}/v2`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.authorization === undefined ? extra : { ...extra, authorization: this.authorization };
  }

  /**
   * HTTPS first; a loopback registry that answers plain HTTP instead is asked
   * over HTTP, as Docker does. Nothing is remembered while neither answers
   * (a registry still starting must not be pinned to the wrong scheme).
   */
  private async resolveScheme(): Promise<void> {
    if (this.scheme !== undefined) return;
    try {
      await this.fetcher(`https://${this.registry}/v2/`, { headers: this.headers() });
      this.scheme = "https";
      return;
    } catch (error) {
      // Only a server that answered, but not in TLS, is asked again over HTTP: a refused connection
      // (nothing listening yet) says nothing about the scheme.
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (!this.loopback || code === "ECONNREFUSED") throw new RegistryError(`cannot reach the registry at https://${this.registry}/v2: ${describe(error)}`);
    }
    try {
      await this.fetcher(`http://${this.registry}/v2/`, { headers: this.headers() });
      this.scheme = "http";
    } catch (error) {
      throw new RegistryError(`cannot reach the registry at ${this.registry} over HTTPS or HTTP: ${describe(error)}`);
    }
  }

  private async request(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    let response: Response;
    try {
      await this.resolveScheme();
      const send = (): Promise<Response> => this.fetcher(`${this.base}${path}`, { ...init, headers: this.headers(init.headers) });
      try {
        response = await send();
      } catch (error) {
        // A kept-alive connection the registry closed (it restarted, for its garbage collection):
        // a read is sent once more, on a new connection. Writes are not repeated blind.
        const code = (error as { cause?: { code?: string } }).cause?.code;
        const idempotent = init.method === undefined || init.method === "GET" || init.method === "HEAD";
        if (!idempotent || (code !== "UND_ERR_SOCKET" && code !== "ECONNRESET")) throw error;
        response = await send();
      }
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      throw new RegistryError(`cannot reach the registry at ${this.base}: ${describe(error)}`);
    }
    if (response.status === 401) {
      throw new RegistryError(`the registry at ${this.registry} refused the credentials (HTTP 401): set strata:registryUsername and strata:registryPassword (pulumi config set --secret), or docker login ${this.registry}`, 401);
    }
    return response;
  }

  /** Every repository, following pagination. */
  async repositories(): Promise<string[]> {
    const names: string[] = [];
    let next: string | undefined = "/_catalog?n=1000";
    while (next !== undefined) {
      const response = await this.request(next);
      if (!response.ok) throw new RegistryError(`GET ${next}: HTTP ${response.status}`, response.status);
      const body = (await response.json()) as { repositories?: string[] };
      names.push(...(body.repositories ?? []));
      next = nextLink(response.headers.get("link"));
    }
    return names.sort();
  }

  /** Tags of one repository; empty when the repository does not exist. */
  async tags(repository: string): Promise<string[]> {
    const response = await this.request(`/${repository}/tags/list`);
    if (response.status === 404) return [];
    if (!response.ok) throw new RegistryError(`GET tags of ${repository}: HTTP ${response.status}`, response.status);
    const body = (await response.json()) as { tags?: string[] | null };
    return [...(body.tags ?? [])].sort();
  }

  /** The manifest a tag or digest names, or undefined when there is none. */
  async manifest(repository: string, reference: string): Promise<ManifestResult | undefined> {
    const response = await this.request(`/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_TYPES } });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new RegistryError(`GET manifest ${repository}:${reference}: HTTP ${response.status}`, response.status);
    const digest = response.headers.get("docker-content-digest") ?? "";
    const mediaType = response.headers.get("content-type") ?? "";
    const bytes = Buffer.from(await response.arrayBuffer());
    this.blobCache?.write(digest, bytes);
    return { digest, mediaType, manifest: JSON.parse(bytes.toString("utf8")) as ManifestResult["manifest"] };
  }

  /** A manifest's exact bytes (its digest is over these bytes) and media type; by digest, from the cache when it has them. */
  async rawManifest(repository: string, reference: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const cached = this.blobCache?.read(reference);
    // The media type travels in the bytes of every manifest Docker and BuildKit write; one that
    // leaves it out is asked for, since the registry's Content-Type is then the only source.
    const cachedType = cached === undefined ? undefined : (JSON.parse(cached.toString("utf8")) as { mediaType?: unknown }).mediaType;
    if (cached !== undefined && typeof cachedType === "string") return { bytes: cached, mediaType: cachedType };
    const response = await this.request(`/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_TYPES } });
    if (!response.ok) throw new RegistryError(`GET manifest ${repository}@${reference}: HTTP ${response.status}`, response.status);
    const bytes = Buffer.from(await response.arrayBuffer());
    this.blobCache?.write(response.headers.get("docker-content-digest") ?? "", bytes);
    return { bytes, mediaType: response.headers.get("content-type") ?? "" };
  }

  /** Puts manifest bytes under a tag or digest; returns the digest the registry computed. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const response = await this.request(`/${repository}/manifests/${reference}`, { method: "PUT", headers: { "content-type": mediaType }, body: new Uint8Array(bytes) });
    if (response.status !== 201) throw new RegistryError(`PUT manifest ${repository}:${reference}: HTTP ${response.status} ${await response.text()}`, response.status);
    return response.headers.get("docker-content-digest") ?? "";
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    const response = await this.request(`/${repository}/manifests/${digest}`, { method: "DELETE" });
    if (response.status !== 202 && response.status !== 404) throw new RegistryError(`DELETE ${repository}@${digest}: HTTP ${response.status}`, response.status);
  }

  /** Makes a blob of one repository available in another: a cross-repository mount, else a streamed copy. */
  async mountBlob(source: string, target: string, digest: string): Promise<void> {
    if (await this.blobExists(target, digest)) return;
    const mount = await this.request(`/${target}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(source)}`, { method: "POST" });
    if (mount.status === 201) return;
    if (mount.status !== 202) throw new RegistryError(`mount ${digest} into ${target}: HTTP ${mount.status}`, mount.status);
    // The registry opened an upload instead of mounting: stream the blob through.
    const location = mount.headers.get("location");
    if (location === null) throw new RegistryError(`upload into ${target} gave no location`);
    const blob = await this.request(`/${source}/blobs/${digest}`);
    if (!blob.ok) throw new RegistryError(`GET blob ${source}@${digest}: HTTP ${blob.status}`, blob.status);
    const url = new URL(location, this.base);
    url.searchParams.set("digest", digest);
    const put = await this.fetcher(url, { method: "PUT", headers: this.headers({ "content-type": "application/octet-stream" }), body: new Uint8Array(await blob.arrayBuffer()) });
    if (put.status !== 201) throw new RegistryError(`PUT blob ${target}@${digest}: HTTP ${put.status}`, put.status);
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const response = await this.request(`/${repository}/blobs/${digest}`, { method: "HEAD" });
    return response.ok;
  }

  /** The image config (labels and all) behind a tag or digest. */
  async imageConfig(repository: string, reference: string): Promise<ImageConfig | undefined> {
    const found = await this.manifest(repository, reference);
    return found === undefined ? undefined : this.configOf(repository, found);
  }

  /** The image config a manifest points at (one request, none when cached; none for an index). */
  async configOf(repository: string, found: ManifestResult): Promise<ImageConfig | undefined> {
    const configDigest = found.manifest.config?.digest;
    if (configDigest === undefined) return undefined;
    let bytes = this.blobCache?.read(configDigest);
    if (bytes === undefined) {
      const response = await this.request(`/${repository}/blobs/${configDigest}`);
      if (!response.ok) throw new RegistryError(`GET config blob of ${repository}@${found.digest}: HTTP ${response.status}`, response.status);
      bytes = Buffer.from(await response.arrayBuffer());
      this.blobCache?.write(configDigest, bytes);
    }
    return JSON.parse(bytes.toString("utf8")) as ImageConfig;
  }
}

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
}

export interface CopyResult {
  /** The target tag did not point at this digest before the copy (an unchecked copy: true). */
  readonly created: boolean;
  /** `sha256:…` of the manifest under the tag: the source digest, or the annotated copy's own. */
  readonly digest: string;
}

const INDEX_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);

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
  if (existing !== undefined && existing.digest === digest) return { created: false, digest };
  if (existing !== undefined && request.immutable) {
    throw new RegistryError(`${request.targetRepository}:${request.tag} already points at ${existing.digest}; an immutable channel will not move it to ${digest}`);
  }
  copy ??= await client.rawManifest(request.sourceRepository, request.digest);
  await copyManifest(client, request.sourceRepository, request.targetRepository, copy, request.tag);
  return { created: true, digest };
}

/** Manifest bytes with annotations merged in (serialised the same way every time: same input, same digest). */
function annotated(bytes: Buffer, annotations: Readonly<Record<string, string>>): Buffer {
  const manifest = JSON.parse(bytes.toString("utf8")) as { annotations?: Record<string, string> };
  return Buffer.from(JSON.stringify({ ...manifest, annotations: { ...manifest.annotations, ...annotations } }, null, 3));
}

async function copyManifest(client: RegistryClient, source: string, target: string, raw: { bytes: Buffer; mediaType: string }, reference: string): Promise<void> {
  const { bytes, mediaType } = raw;
  const manifest = JSON.parse(bytes.toString("utf8")) as { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
  if (INDEX_TYPES.has(mediaType)) {
    for (const child of manifest.manifests ?? []) await copyManifest(client, source, target, await client.rawManifest(source, child.digest), child.digest);
  } else if (source !== target) {
    const blobs = [manifest.config?.digest, ...(manifest.layers ?? []).map((layer) => layer.digest)].filter((blob): blob is string => blob !== undefined);
    for (const blob of blobs) await client.mountBlob(source, target, blob);
  }
  const expected = sha256Digest(bytes);
  const written = await client.putManifest(target, reference, bytes, mediaType);
  if (written !== expected) throw new RegistryError(`copied ${source} to ${target}:${reference} as ${expected} but the registry reports ${written}`);
}

/** The path of an RFC 5988 `Link: <…>; rel="next"` header. */
function nextLink(header: string | null): string | undefined {
  const match = header === null ? null : /<([^>]+)>;\s*rel="next"/.exec(header);
  if (!match?.[1]) return undefined;
  const url = match[1];
  return url.startsWith("/v2") ? url.slice(3) : url;
}

/** An error's message and, for network failures, its cause (fetch hides the useful part there). */
function describe(error: unknown): string {
  const message = (error as Error).message;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause === undefined ? message : `${message} (${cause.code ?? cause.message ?? "unknown cause"})`;
}
