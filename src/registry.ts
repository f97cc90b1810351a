/**
 * A small client for the OCI distribution API (registry v2): enough to list
 * what a registry holds and read an image's config. Plain HTTP is used for
 * loopback registries, HTTPS otherwise, as Docker does.
 */

const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export interface RegistryOptions {
  /** `host[:port]` */
  readonly registry: string;
  /** Overrides the scheme choice (loopback: http, otherwise https). */
  readonly scheme?: "http" | "https";
  readonly fetch?: typeof fetch;
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

export class RegistryClient {
  private readonly base: string;
  private readonly fetcher: typeof fetch;

  constructor(options: RegistryOptions) {
    const host = options.registry.replace(/:\d+$/, "");
    const loopback = host === "localhost" || host.startsWith("127.") || host === "[::1]";
    this.base = `${options.scheme ?? (loopback ? "http" : "https")}://${options.registry}/v2`;
    this.fetcher = options.fetch ?? fetch;
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetcher(`${this.base}${path}`, init);
    } catch (error) {
      throw new RegistryError(`cannot reach the registry at ${this.base}: ${(error as Error).message}`);
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
    return { digest, mediaType, manifest: (await response.json()) as ManifestResult["manifest"] };
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const response = await this.request(`/${repository}/blobs/${digest}`, { method: "HEAD" });
    return response.ok;
  }

  /** The image config (labels and all) behind a tag or digest. */
  async imageConfig(repository: string, reference: string): Promise<ImageConfig | undefined> {
    const found = await this.manifest(repository, reference);
    const configDigest = found?.manifest.config?.digest;
    if (configDigest === undefined) return undefined;
    const response = await this.request(`/${repository}/blobs/${configDigest}`);
    if (!response.ok) throw new RegistryError(`GET config blob of ${repository}:${reference}: HTTP ${response.status}`, response.status);
    return (await response.json()) as ImageConfig;
  }
}

/** The path of an RFC 5988 `Link: <…>; rel="next"` header. */
function nextLink(header: string | null): string | undefined {
  const match = header === null ? null : /<([^>]+)>;\s*rel="next"/.exec(header);
  if (!match?.[1]) return undefined;
  const url = match[1];
  return url.startsWith("/v2") ? url.slice(3) : url;
}
