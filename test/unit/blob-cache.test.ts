import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BlobCache, defaultBlobCache } from "../../src/registry/blob-cache.js";
import { RegistryClient } from "../../src/registry/client.js";
import { copyImage } from "../../src/registry/copy.js";
import { scratchDir } from "../helpers/catalog.js";

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const fileOf = (dir: string, digest: string): string => path.join(dir, "sha256", digest.slice(7, 9), digest.slice(7));

describe("blob cache", () => {
  it("keeps bytes under the digest that names them, and nothing under another", () => {
    const dir = scratchDir("blobs");
    const cache = new BlobCache(dir);
    const bytes = Buffer.from('{"config":{}}');
    cache.write(sha256(bytes), bytes);
    expect(cache.read(sha256(bytes))?.toString()).toBe('{"config":{}}');
    cache.write(sha256("other"), bytes);
    expect(cache.read(sha256("other"))).toBeUndefined();
    cache.write("latest", bytes);
    expect(readdirSync(path.join(dir, "sha256")).length).toBe(1);
  });
  it("treats a damaged entry as missing and removes it", () => {
    const dir = scratchDir("blobs");
    const cache = new BlobCache(dir);
    const bytes = Buffer.from("manifest");
    cache.write(sha256(bytes), bytes);
    writeFileSync(fileOf(dir, sha256(bytes)), "tampered");
    expect(cache.read(sha256(bytes))).toBeUndefined();
    expect(existsSync(fileOf(dir, sha256(bytes)))).toBe(false);
  });
  it("leaves an entry there already as it is, and writes a removed one again", () => {
    const dir = scratchDir("blobs");
    const cache = new BlobCache(dir);
    const bytes = Buffer.from("manifest");
    cache.write(sha256(bytes), bytes);
    const first = statSync(fileOf(dir, sha256(bytes))).ino;
    cache.write(sha256(bytes), bytes);
    // Written aside and renamed, an entry written again would be another file.
    expect(statSync(fileOf(dir, sha256(bytes))).ino).toBe(first);
    writeFileSync(fileOf(dir, sha256(bytes)), "tampered");
    expect(cache.read(sha256(bytes))).toBeUndefined();
    cache.write(sha256(bytes), bytes);
    expect(cache.read(sha256(bytes))?.toString()).toBe("manifest");
    // Cut short (a full disk, a killed write without the rename): written again without a read first.
    writeFileSync(fileOf(dir, sha256(bytes)), "manif");
    cache.write(sha256(bytes), bytes);
    expect(readFileSync(fileOf(dir, sha256(bytes)), "utf8")).toBe("manifest");
  });
  it("never throws on a cache it cannot use (a name too long, a file where its folder should be, a folder where its entry should be) and leaves nothing of a failed write", () => {
    const dir = scratchDir("blobs");
    const bytes = Buffer.from("manifest");
    expect(() => new BlobCache(path.join(dir, "x".repeat(300))).write(sha256(bytes), bytes)).not.toThrow();
    writeFileSync(path.join(dir, "a-file"), "");
    const underFile = new BlobCache(path.join(dir, "a-file"));
    expect(() => underFile.write(sha256(bytes), bytes)).not.toThrow();
    expect(underFile.read(sha256(bytes))).toBeUndefined();
    // A folder where the entry should be: the rename fails, and nothing of the write is left beside it.
    const entry = fileOf(path.join(dir, "cache"), sha256(bytes));
    mkdirSync(entry, { recursive: true });
    writeFileSync(path.join(entry, "inside"), "");
    expect(() => new BlobCache(path.join(dir, "cache")).write(sha256(bytes), bytes)).not.toThrow();
    expect(readdirSync(path.dirname(entry))).toEqual([sha256(bytes).slice(7)]);
  });
  it("lives in STRATA_BLOB_CACHE, else in the toolchain cache; off turns it off", () => {
    expect(defaultBlobCache({ STRATA_BLOB_CACHE: "/x/blobs" })?.dir).toBe("/x/blobs");
    expect(defaultBlobCache({ STRATA_HOME: "/home/ci/.cache/strata" })?.dir).toBe("/home/ci/.cache/strata/registry-blobs");
    expect(defaultBlobCache({ STRATA_BLOB_CACHE: "off" })).toBeUndefined();
  });
});

describe("registry client with a blob cache", () => {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config: { digest: "" }, layers: [] }));
  const config = Buffer.from(JSON.stringify({ config: { Labels: { "org.strata.fingerprint": "f1" } } }));
  const configDigest = sha256(config);
  const manifestBytes = Buffer.from(JSON.stringify({ ...JSON.parse(manifest.toString()), config: { digest: configDigest } }));
  const manifestDigest = sha256(manifestBytes);

  /** A registry of one image under g/app:1.0, counting the requests it gets. */
  function registry(): { fetch: typeof fetch; requests: string[] } {
    const requests: string[] = [];
    const fake = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      requests.push(`${init?.method ?? "GET"} ${url.replace(/^https?:\/\/[^/]+\/v2/, "")}`);
      if (url.endsWith("/v2/")) return new Response("{}");
      if (url.endsWith("/g/app/manifests/1.0") || url.endsWith(`/g/app/manifests/${manifestDigest}`)) {
        return new Response(new Uint8Array(manifestBytes), { headers: { "docker-content-digest": manifestDigest, "content-type": "application/vnd.docker.distribution.manifest.v2+json" } });
      }
      if (url.endsWith(`/g/app/blobs/${configDigest}`)) return new Response(new Uint8Array(config));
      if (init?.method === "PUT") return new Response(null, { status: 201, headers: { "docker-content-digest": sha256(Buffer.from(init.body as Uint8Array)) } });
      return new Response("{}", { status: 404 });
    }) as typeof fetch;
    return { fetch: fake, requests };
  }

  it("reads a config once per machine, and a manifest by digest not at all once its tag was read", async () => {
    const blobCache = new BlobCache(scratchDir("blobs"));
    const first = registry();
    const client = new RegistryClient({ registry: "127.0.0.1:5000", scheme: "http", fetch: first.fetch, blobCache });
    const found = await client.manifest("g/app", "1.0");
    expect(found?.digest).toBe(manifestDigest);
    expect((await client.configOf("g/app", found!))?.config?.Labels).toEqual({ "org.strata.fingerprint": "f1" });
    expect((await client.rawManifest("g/app", manifestDigest)).bytes.equals(manifestBytes)).toBe(true);
    expect(first.requests).toEqual(["GET /g/app/manifests/1.0", `GET /g/app/blobs/${configDigest}`]);

    // Another process, the same cache: the tag is asked again (tags move), its config is not.
    const second = registry();
    const again = new RegistryClient({ registry: "127.0.0.1:5000", scheme: "http", fetch: second.fetch, blobCache });
    await again.configOf("g/app", (await again.manifest("g/app", "1.0"))!);
    expect(second.requests).toEqual(["GET /g/app/manifests/1.0"]);
  });

  it("an unchecked annotated copy is one request: the source from the cache, the tag put unread", async () => {
    const blobCache = new BlobCache(scratchDir("blobs"));
    blobCache.write(manifestDigest, manifestBytes);
    const { fetch: fake, requests } = registry();
    const client = new RegistryClient({ registry: "127.0.0.1:5000", scheme: "http", fetch: fake, blobCache });
    const result = await copyImage(client, { sourceRepository: "g/app", digest: manifestDigest, targetRepository: "g/app", tag: "1.0-7_1", immutable: false, annotations: { "org.strata.tag": "1.0-7_1" }, unchecked: true });
    expect(requests).toEqual(["PUT /g/app/manifests/1.0-7_1"]);
    expect(result.digest).not.toBe(manifestDigest);
    await expect(copyImage(client, { sourceRepository: "g/app", digest: manifestDigest, targetRepository: "g/app", tag: "1.0", immutable: true, unchecked: true })).rejects.toThrow(/never written unchecked/);
  });
});
