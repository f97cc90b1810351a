/**
 * Files read out of an image's layers in the registry (registry/image-files.ts), over a fetch that
 * answers as a registry would, with layers built in memory: layers applied in order with whiteouts
 * and opaque directories, symlinks followed, and every layer that cannot be trusted or read (digest,
 * media type, truncation) refused with the image and the layer named.
 */
import { createHash } from "node:crypto";
import zlib, { gzipSync } from "node:zlib";
import { packTar, type TarEntry } from "modern-tar";
import { describe, expect, it } from "vitest";
import { isSbomSource } from "../../src/core/sbom.js";
import { RegistryClient, RegistryError } from "../../src/registry/client.js";
import { filesOfLayers, imageFiles, LayerChangesets } from "../../src/registry/image-files.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const TAR = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const digestOf = (bytes: Uint8Array): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

type Spec = { name: string; type?: "file" | "directory" | "symlink" | "link"; body?: string; linkname?: string };
async function tar(specs: readonly Spec[]): Promise<Buffer> {
  const entries: TarEntry[] = specs.map((spec) => ({
    header: { name: spec.name, type: spec.type ?? "file", size: spec.type === undefined || spec.type === "file" ? Buffer.byteLength(spec.body ?? "") : 0, ...(spec.linkname === undefined ? {} : { linkname: spec.linkname }) },
    ...(spec.body === undefined ? {} : { body: spec.body }),
  }));
  return Buffer.from(await packTar(entries));
}

interface Layer { readonly bytes: Buffer; readonly mediaType: string }
interface FakeRegistry {
  readonly client: RegistryClient;
  /** Pushes an image; returns its manifest digest. */
  push(layers: readonly Layer[], options?: { manifestType?: string; configType?: string }): string;
  readonly blobs: Map<string, Buffer>;
  /** What the registry sends for a blob instead of its bytes. */
  readonly tampered: Map<string, Buffer>;
  readonly requests: string[];
}

/** A registry in a Map, answering the client's GETs of manifests and blobs as distribution does. */
function fakeRegistry(answer?: (url: string) => Response | undefined): FakeRegistry {
  const manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
  const blobs = new Map<string, Buffer>();
  const tampered = new Map<string, Buffer>();
  const requests: string[] = [];
  const fetcher = (async (input: string | URL) => {
    const url = String(input);
    requests.push(url.replace(/^http:\/\/registry\.test\/v2/, ""));
    const scripted = answer?.(url);
    if (scripted !== undefined) return scripted;
    const manifest = /\/manifests\/(sha256:[0-9a-f]+)$/.exec(url);
    if (manifest !== null) {
      const found = manifests.get(manifest[1] as string);
      return found === undefined ? new Response("{}", { status: 404 }) : new Response(new Uint8Array(found.bytes), { status: 200, headers: { "content-type": found.mediaType, "docker-content-digest": manifest[1] as string } });
    }
    const blob = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(url);
    const bytes = blob === null ? undefined : tampered.get(blob[1] as string) ?? blobs.get(blob[1] as string);
    if (bytes === undefined) return new Response('{"errors":[{"code":"BLOB_UNKNOWN"}]}', { status: 404 });
    // In chunks, as a socket delivers a large body.
    return new Response(new ReadableStream({
      start(controller) {
        for (let offset = 0; offset < bytes.length; offset += 4096) controller.enqueue(new Uint8Array(bytes.subarray(offset, offset + 4096)));
        controller.close();
      },
    }), { status: 200 });
  }) as typeof fetch;
  const client = new RegistryClient({ registry: "registry.test", scheme: "http", fetch: fetcher, dockerConfigDir: "/nonexistent", sleep: async () => undefined });
  return {
    client,
    blobs,
    tampered,
    requests,
    push(layers, options = {}) {
      const config = Buffer.from(JSON.stringify({ created: "2026-12-02T15:17:03Z", os: "linux", architecture: "amd64", rootfs: { type: "layers" } }));
      blobs.set(digestOf(config), config);
      for (const layer of layers) blobs.set(digestOf(layer.bytes), layer.bytes);
      const mediaType = options.manifestType ?? OCI_MANIFEST;
      const bytes = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: options.configType ?? (mediaType === DOCKER_MANIFEST ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json"), digest: digestOf(config), size: config.length },
        layers: layers.map((layer) => ({ mediaType: layer.mediaType, digest: digestOf(layer.bytes), size: layer.bytes.length })),
      }));
      manifests.set(digestOf(bytes), { bytes, mediaType });
      return digestOf(bytes);
    },
  };
}

/** A layer's bytes as the stream a LayerSource opens. */
const layerStream = (bytes: Buffer): ReadableStream<Uint8Array> => new Blob([new Uint8Array(bytes)]).stream();
const text = (files: Map<string, Buffer>): Record<string, string> => Object.fromEntries([...files].map(([name, content]) => [name, content.toString("utf8")]).sort());
const failure = async (promise: Promise<unknown>): Promise<RegistryError> => {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RegistryError);
  return error as RegistryError;
};

describe("layers applied in order", () => {
  it("whiteouts and opaque directories hide the layers below, never their own layer; a later file replaces, a non-directory hides a directory", async () => {
    const lower = await tar([
      { name: "./", type: "directory" },
      { name: "./etc/os-release", type: "symlink", linkname: "../usr/lib/os-release" },
      { name: "./usr/lib/os-release", body: "ID=debian\nVERSION_ID=12\n" },
      { name: "./var/lib/dpkg/status", body: "status 1" },
      { name: "./a/x-1.dist-info/", type: "directory" },
      { name: "./a/x-1.dist-info/METADATA", body: "x 1" },
      { name: "./a/y-1.dist-info/METADATA", body: "y 1" },
      { name: "./opt/py/b-1.dist-info/METADATA", body: "b 1" },
      { name: "./opt/py/c-1.dist-info/METADATA", body: "c 1" },
      { name: "./opt/other/d-1.dist-info/METADATA", body: "d 1" },
      { name: "./g/f-1.dist-info/METADATA", body: "f 1" },
      { name: "./h/k-1.dist-info/METADATA", body: "k 1" },
      { name: "./usr/share/doc/readme", body: "not wanted" },
    ]);
    const upper = gzipSync(await tar([
      { name: "a/.wh.x-1.dist-info" },
      { name: "opt/py/.wh..wh..opq" },
      { name: "opt/py/c-2.dist-info/METADATA", body: "c 2" },
      { name: "var/lib/dpkg/status", body: "status 2" },
      // Deleted and put back in one layer: the new one stays.
      { name: "g/.wh.f-1.dist-info" },
      { name: "g/f-1.dist-info/METADATA", body: "f 2" },
      // A file where a directory was: what was under it goes.
      { name: "h", body: "now a file" },
      { name: "a/.wh..wh.plnk/1234" },
    ]));
    const registry = fakeRegistry();
    const digest = registry.push([{ bytes: lower, mediaType: TAR }, { bytes: upper, mediaType: DOCKER_GZIP }], { manifestType: DOCKER_MANIFEST });
    const { files, config, layers } = await imageFiles(registry.client, "g/img", digest);
    expect(text(files)).toEqual({
      "a/y-1.dist-info/METADATA": "y 1",
      "etc/os-release": "ID=debian\nVERSION_ID=12\n",
      "g/f-1.dist-info/METADATA": "f 2",
      "opt/other/d-1.dist-info/METADATA": "d 1",
      "opt/py/c-2.dist-info/METADATA": "c 2",
      "usr/lib/os-release": "ID=debian\nVERSION_ID=12\n",
      "var/lib/dpkg/status": "status 2",
    });
    expect(config.created).toBe("2026-12-02T15:17:03Z");
    expect(layers).toBe(2);
  });

  it("a whiteout of the os-release target leaves etc/os-release dangling: absent, as in a container", async () => {
    const lower = await tar([{ name: "etc/os-release", type: "symlink", linkname: "/usr/lib/os-release" }, { name: "usr/lib/os-release", body: "ID=debian\n" }]);
    const upper = await tar([{ name: "usr/lib/.wh.os-release" }]);
    const files = await filesOfLayers("test", [lower, upper].map((bytes, index) => ({ name: `layer ${index + 1}`, mediaType: TAR, open: async () => layerStream(bytes) })));
    expect([...files.keys()]).toEqual([]);
  });

  it("symlinks in the way are followed (merged /usr: lib -> usr/lib), and long PAX names read", async () => {
    const deep = `opt/${"v".repeat(120)}/lib/python3.11/site-packages/some_package-1.0.dist-info/METADATA`;
    const layer = await tar([
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "etc/os-release", type: "symlink", linkname: "/lib/os-release" },
      { name: "usr/lib/os-release", body: "ID=debian\n" },
      { name: deep, body: "long" },
    ]);
    const files = await filesOfLayers("test", [{ name: "layer 1", mediaType: TAR, open: async () => layerStream(layer) }]);
    expect(text(files)).toEqual({ "etc/os-release": "ID=debian\n", "usr/lib/os-release": "ID=debian\n", [deep]: "long" });
  });

  it("a wanted symlink to a file Strata does not keep, a symlink loop and a path that leaves the root are refused", async () => {
    const read = (bytes: Buffer): Promise<Map<string, Buffer>> => filesOfLayers("img", [{ name: "layer 1 of 1", mediaType: TAR, open: async () => layerStream(bytes) }]);
    expect((await failure(read(await tar([{ name: "etc/os-release", type: "symlink", linkname: "../srv/release" }, { name: "srv/release", body: "ID=x\n" }])))).message)
      .toBe("img: etc/os-release is a symlink to srv/release, a file Strata does not read, so its contents cannot be known; the SBOM is not made without them");
    expect((await failure(read(await tar([{ name: "etc/os-release", type: "symlink", linkname: "os-release" }])))).message).toMatch(/goes through more than 40 symlinks/);
    expect((await failure(read(await tar([{ name: "../var/lib/dpkg/status", body: "x" }])))).message).toMatch(/img, layer 1 of 1: the entry "..\/var\/lib\/dpkg\/status" points outside the image's root/);
  });

  it("refuses an image whose dpkg folder (or one above it) is a symlink: the database behind it is not read, and the SBOM would list no packages", async () => {
    const read = (bytes: Buffer): Promise<Map<string, Buffer>> => filesOfLayers("img", [{ name: "layer 1 of 1", mediaType: TAR, open: async () => layerStream(bytes) }]);
    const status = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2\n\n";
    // The same database, stored where it is read: found.
    expect(text(await read(await tar([{ name: "var/lib/dpkg/status", body: status }])))).toEqual({ "var/lib/dpkg/status": status });
    expect((await failure(read(await tar([{ name: "var/lib/dpkg", type: "symlink", linkname: "../../opt/dpkgdb" }, { name: "opt/dpkgdb/status", body: status }])))).message)
      .toBe("img: var/lib/dpkg is a symlink to ../../opt/dpkgdb, so the files Strata reads in var/lib/dpkg are behind it, where it does not look; their packages cannot be listed, and the SBOM is not made without them (make var/lib/dpkg a folder in the image)");
    expect((await failure(read(await tar([{ name: "var", type: "symlink", linkname: "srv/var" }, { name: "srv/var/lib/dpkg/status", body: status }])))).message).toMatch(/^img: var is a symlink to srv\/var, /);
    // A symlink elsewhere (merged /usr's lib -> usr/lib) is not in the way.
    expect(text(await read(await tar([{ name: "lib", type: "symlink", linkname: "usr/lib" }, { name: "var/lib/dpkg/status", body: status }])))).toEqual({ "var/lib/dpkg/status": status });
  });

  it("gzip, zstd and plain tar layers read alike", async () => {
    const layer = await tar([{ name: "var/lib/dpkg/status", body: "s" }]);
    const zstd = (zlib as { zstdCompressSync?: (bytes: Buffer) => Buffer }).zstdCompressSync;
    expect(zstd, `Node.js ${process.version} has no zstd (22.15 and later have)`).toBeDefined();
    for (const [bytes, mediaType] of [[layer, TAR], [gzipSync(layer), "application/vnd.oci.image.layer.v1.tar+gzip"], [(zstd as (bytes: Buffer) => Buffer)(layer), "application/vnd.oci.image.layer.v1.tar+zstd"]] as const) {
      const files = await filesOfLayers("test", [{ name: "layer 1", mediaType, open: async () => layerStream(bytes) }]);
      expect(text(files), mediaType).toEqual({ "var/lib/dpkg/status": "s" });
    }
  });

  it("a wanted hard link takes its target's contents", async () => {
    const layer = await tar([{ name: "a/x-1.dist-info/METADATA", body: "x" }, { name: "b/x-1.dist-info/METADATA", type: "link", linkname: "a/x-1.dist-info/METADATA" }]);
    const files = await filesOfLayers("test", [{ name: "layer 1", mediaType: TAR, open: async () => layerStream(layer) }]);
    expect(text(files)).toEqual({ "a/x-1.dist-info/METADATA": "x", "b/x-1.dist-info/METADATA": "x" });
  });

  it("a wanted hard link to a file the layer put first at a path not read: the layer is read again, keeping it (review 134)", async () => {
    // As tar writes a folder in the order it lists, not sorted: the bytes at status-hl, status a link to it.
    const status = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n";
    const layer = await tar([{ name: "var/lib/dpkg/status-hl", body: status }, { name: "var/lib/dpkg/status", type: "link", linkname: "var/lib/dpkg/status-hl" }, { name: "var/lib/dpkg/info/a.list", body: "/x\n" }]);
    let opened = 0;
    const files = await filesOfLayers("test", [{ name: "layer 1", mediaType: TAR, open: async () => (opened++, layerStream(layer)) }]);
    expect(text(files)).toEqual({ "var/lib/dpkg/status": status });
    expect(opened).toBe(2);
    // A layer without such a link is read once.
    const plain = await tar([{ name: "var/lib/dpkg/status", body: status }]);
    opened = 0;
    await filesOfLayers("test", [{ name: "layer 1", mediaType: TAR, open: async () => (opened++, layerStream(plain)) }]);
    expect(opened).toBe(1);
    // A link to a symlink the layer holds is still no file: refused, naming the image and layer once.
    const toSymlink = await tar([{ name: "etc/other", type: "symlink", linkname: "nowhere" }, { name: "var/lib/dpkg/status", type: "link", linkname: "etc/other" }]);
    const refused = await filesOfLayers("img", [{ name: "layer 1", mediaType: TAR, open: async () => layerStream(toSymlink) }]).then(() => undefined, (error: unknown) => error as Error);
    expect(refused?.message).toBe("img, layer 1: var/lib/dpkg/status is a hard link to etc/other, which is not a file Strata reads, so its contents cannot be known; the SBOM is not made without them");
  });
});

describe("the tar parser's stalls (review 129: the sample's Python layer hung its signing)", () => {
  /** A layer of `bytes` given in chunks of `chunk` bytes, plain tar. */
  // A stall fails fast, naming itself, instead of the test timing out.
  const chunked = (bytes: Buffer, chunk: number) => ({ name: "layer 1 of 1", mediaType: TAR, stallMs: 3000, open: async () => new ReadableStream<Uint8Array>({ start(controller) {
    for (let at = 0; at < bytes.length; at += chunk) controller.enqueue(bytes.subarray(at, at + chunk));
    controller.close();
  } }) });

  it("reads the wanted files however the layer is chunked, bodies not kept read to their end (modern-tar stalled on one cancelled, then one read)", async () => {
    // The shape that stalled for good with each body not kept cancelled: a small file skipped, then a kept one, in chunks of 4 KiB.
    const stalledShape = await tar([
      { name: "usr/bin/tool", body: "x".repeat(100) },
      { name: "usr/lib/python3/dist-packages/A-1.0.egg-info/", type: "directory" },
      { name: "usr/lib/python3/dist-packages/A-1.0.egg-info/PKG-INFO", body: "Name: A\nVersion: 1.0\n".padEnd(3438, "#") },
      ...["dependency_links.txt", "entry_points.txt", "requires.txt", "top_level.txt"].map((file) => ({ name: `usr/lib/python3/dist-packages/A-1.0.egg-info/${file}`, body: "y".repeat(7) })),
      { name: "usr/lib/python3/dist-packages/B-2.0.egg-info/PKG-INFO", body: "Name: B\nVersion: 2.0\n".padEnd(3222, "#") },
    ]);
    const files = await filesOfLayers("g/app@sha256:x", [chunked(stalledShape, 4096)]);
    expect([...files.keys()].sort()).toEqual(["usr/lib/python3/dist-packages/A-1.0.egg-info/PKG-INFO", "usr/lib/python3/dist-packages/B-2.0.egg-info/PKG-INFO"]);
    // And random archives (a fifth of which stalled with cancelled bodies), each in one of several chunk sizes.
    let seed = 12345;
    const random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    // 1.5 MiB: past the decoder's 1 MiB buffer, where it pauses its input.
    const sizes = [0, 1, 7, 59, 100, 511, 512, 513, 2048, 3222, 3438, 20000, 70000, 1_572_864];
    for (let round = 0; round < 60; round++) {
      const specs: Spec[] = [];
      const kept: string[] = [];
      for (let index = 0, count = 3 + random(15); index < count; index++) {
        const wantedFile = random(3) === 0;
        const name = wantedFile ? `usr/lib/python3/dist-packages/p${index}-1.0.dist-info/METADATA` : `opt/f${index}`;
        if (wantedFile) kept.push(name);
        const kind = random(8);
        specs.push(kind === 0 ? { name: `opt/d${index}/`, type: "directory" }
          : kind === 1 ? { name: `opt/s${index}`, type: "symlink", linkname: "f0" }
            : { name, body: "z".repeat(sizes[random(sizes.length)] as number) });
      }
      const read = await filesOfLayers("g/app@sha256:x", [chunked(await tar(specs), [1000, 3000, 4096, 16384, 65536][random(5)] as number)]);
      const expected = specs.filter((spec) => spec.type === undefined && kept.includes(spec.name)).map((spec) => spec.name);
      expect([...read.keys()].sort(), `round ${round}`).toEqual([...new Set(expected)].sort());
    }
  }, 30_000);

  it("gives up a layer whose read makes no progress for the stall limit, naming it, and cancels its blob (never a hang; with a body cancelled, the parser stall of review 129 ends so too)", async () => {
    const half = (await tar([{ name: "etc/os-release", body: "ID=debian\n".padEnd(9000, "#") }])).subarray(0, 4096);
    let cancelled: unknown;
    const stalls = { name: "layer 1 of 1", mediaType: TAR, stallMs: 300, open: async () => new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(half);
      },
      cancel(reason) {
        cancelled = reason;
      },
    }) };
    await expect(filesOfLayers("g/app@sha256:x", [stalls])).rejects.toThrow(/^g\/app@sha256:x, layer 1 of 1: reading the layer made no progress for 300 ms \(no byte taken from the blob, no tar entry read\)/);
    // The blob's stream is cancelled with the same error (a download closed), not left open.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(String((cancelled as Error | undefined)?.message)).toMatch(/^reading the layer made no progress/);
  });
});

describe("layers that cannot be trusted or read are refused, naming the image and the layer", () => {
  const status = (body: string): Promise<Buffer> => tar([{ name: "var/lib/dpkg/status", body }]);

  it("a blob whose bytes do not match its digest", async () => {
    const registry = fakeRegistry();
    const good = await status("Package: a\n");
    const layerDigest = digestOf(good);
    const digest = registry.push([{ bytes: good, mediaType: TAR }]);
    // Same length, one byte changed: still a valid tar, so only the digest can tell.
    registry.tampered.set(layerDigest, await status("Package: b\n"));
    const error = await failure(imageFiles(registry.client, "g/img", digest));
    expect(error.fault).toBe("integrity");
    expect(error.message).toBe(`registry.test/g/img@${digest}, layer 1 of 1 (${layerDigest}): GET blob g/img@${layerDigest} at registry.test: the blob's bytes do not match its digest (computed ${digestOf(await status("Package: b\n"))})`);
  });

  it("a blob longer or shorter than the manifest says", async () => {
    const registry = fakeRegistry();
    const good = await status("x");
    const digest = registry.push([{ bytes: good, mediaType: TAR }]);
    registry.tampered.set(digestOf(good), Buffer.concat([good, Buffer.alloc(512)]));
    expect((await failure(imageFiles(registry.client, "g/img", digest))).message).toMatch(/more than the \d+ bytes the manifest says arrived/);
    registry.tampered.set(digestOf(good), good.subarray(0, 1024));
    expect((await failure(imageFiles(registry.client, "g/img", digest))).message).toMatch(/1024 bytes arrived where the manifest says \d+/);
  });

  it("an unknown layer media type, before any blob is read", async () => {
    const registry = fakeRegistry();
    const digest = registry.push([{ bytes: await status("x"), mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" }]);
    const error = await failure(imageFiles(registry.client, "g/img", digest));
    expect(error.message).toMatch(/^registry\.test\/g\/img@sha256:[0-9a-f]+, layer 1 of 1 \(sha256:[0-9a-f]+\): media type "application\/vnd\.oci\.image\.layer\.nondistributable\.v1\.tar\+gzip" is not a layer Strata can read/);
    expect(registry.requests.filter((request) => request.includes("/blobs/")).length).toBe(1); // the config only
  });

  it("a truncated tar, a truncated gzip, a bad header checksum (each under its own, matching digest)", async () => {
    const whole = await tar([{ name: "var/lib/dpkg/status", body: "x".repeat(3000) }, { name: "etc/os-release", body: "ID=debian\n" }]);
    const cases: [Buffer, string, RegExp][] = [
      [whole.subarray(0, 2048), TAR, /layer 1 of 1 \(sha256:[0-9a-f]+\): the layer is not a valid tar archive as its media type says \(Tar archive is truncated\)/],
      // Cut at an entry boundary: the end-of-archive blocks are missing.
      [whole.subarray(0, 512 + 3072), TAR, /Tar archive is truncated/],
      // Only the gzip trailer (CRC and length) missing: every byte of the tar came out, and still refused.
      [gzipSync(whole).subarray(0, gzipSync(whole).length - 4), DOCKER_GZIP, /not a valid tar archive as its media type says \(unexpected end of file, Z_BUF_ERROR\)/],
      [Buffer.concat([whole.subarray(0, 148), Buffer.from("0001234\0"), whole.subarray(156)]), TAR, /Invalid tar header checksum/],
      // Said to be gzip, but a plain tar.
      [whole, DOCKER_GZIP, /not a valid tar archive as its media type says \(incorrect header check, Z_DATA_ERROR\)/],
    ];
    for (const [bytes, mediaType, message] of cases) {
      const registry = fakeRegistry();
      const digest = registry.push([{ bytes, mediaType }]);
      const error = await failure(imageFiles(registry.client, "g/img", digest));
      expect(error.message).toMatch(message);
      expect(error.fault).toBe("malformed");
    }
  });

  it("an index, a signature (artifact config) and a missing manifest are not images", async () => {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
    const registry = fakeRegistry((url) => url.endsWith(`/manifests/${digestOf(index)}`)
      ? new Response(new Uint8Array(index), { status: 200, headers: { "content-type": "application/vnd.oci.image.index.v1+json" } }) : undefined);
    expect((await failure(imageFiles(registry.client, "g/img", digestOf(index)))).message).toMatch(/is an image index \(one image per platform\); read the files of one of its images/);
    const signature = registry.push([{ bytes: Buffer.from("{}"), mediaType: "application/vnd.dev.cosign.simplesigning.v1+json" }], { configType: "application/vnd.oci.empty.v1+json" });
    expect((await failure(imageFiles(registry.client, "g/img", signature))).message).toMatch(/its config has media type "application\/vnd\.oci\.empty\.v1\+json": an artifact/);
    expect((await failure(imageFiles(registry.client, "g/img", `sha256:${"0".repeat(64)}`))).message).toMatch(/the registry has no such manifest/);
    // An image without layers (FROM scratch, nothing added) has no files: an empty answer, truthfully.
    expect((await imageFiles(registry.client, "g/img", registry.push([]))).files.size).toBe(0);
  });

  it("a blob the registry does not have is an error, not an empty layer", async () => {
    const registry = fakeRegistry();
    const layer = await status("x");
    const digest = registry.push([{ bytes: layer, mediaType: TAR }]);
    registry.blobs.delete(digestOf(layer));
    expect((await failure(imageFiles(registry.client, "g/img", digest))).message).toMatch(/layer 1 of 1 \(sha256:[0-9a-f]+\): GET blob g\/img@sha256:[0-9a-f]+ at registry.test: HTTP 404/);
  });
});

describe("blob streams", () => {
  it("a 503 before the body is asked again; a reset mid-body ends the stream in a RegistryError", async () => {
    let calls = 0;
    const good = await tar([{ name: "var/lib/dpkg/status", body: "Package: a\n" }]);
    const registry = fakeRegistry((url) => {
      if (!url.endsWith(`/blobs/${digestOf(good)}`)) return undefined;
      calls += 1;
      if (calls === 1) return new Response("busy", { status: 503 });
      if (calls === 2) {
        let sent = false;
        return new Response(new ReadableStream({
          pull(controller) {
            if (sent) controller.error(new TypeError("terminated", { cause: { code: "UND_ERR_SOCKET" } }));
            else controller.enqueue(new Uint8Array(good.subarray(0, 700)));
            sent = true;
          },
        }), { status: 200 });
      }
      return undefined;
    });
    const digest = registry.push([{ bytes: good, mediaType: TAR }]);
    const error = await failure(imageFiles(registry.client, "g/img", digest));
    expect(calls).toBe(2);
    expect(error.message).toMatch(/layer 1 of 1 \(sha256:[0-9a-f]+\): GET blob g\/img@sha256:[0-9a-f]+ at registry.test, after 700 bytes: connection reset \(UND_ERR_SOCKET\)/);
    // Read again: the third answer is the whole blob.
    expect(text((await imageFiles(registry.client, "g/img", digest)).files)).toEqual({ "var/lib/dpkg/status": "Package: a\n" });
  });

  it("only the wanted files are kept (the SBOM's by default)", async () => {
    const registry = fakeRegistry();
    const digest = registry.push([{ bytes: await tar([{ name: "var/lib/dpkg/status", body: "s" }, { name: "etc/passwd", body: "root" }, { name: "var/lib/dpkg/available", body: "a" }]), mediaType: TAR }]);
    expect([...(await imageFiles(registry.client, "g/img", digest)).files.keys()]).toEqual(["var/lib/dpkg/status"]);
    expect([...(await imageFiles(registry.client, "g/img", digest, (name) => name === "etc/passwd")).files.keys()]).toEqual(["etc/passwd"]);
    expect(isSbomSource("etc/passwd")).toBe(false);
  });
});

describe("layers read once per process (LayerChangesets)", () => {
  const blobReads = (registry: FakeRegistry, blob: string): number => registry.requests.filter((request) => request.endsWith(`/blobs/${blob}`)).length;

  it("images sharing a base layer read its blob once, and each gets its own files", async () => {
    const registry = fakeRegistry();
    const base = await tar([{ name: "var/lib/dpkg/status", body: "Package: base\n" }, { name: "a/x-1.dist-info/METADATA", body: "x" }]);
    const leaves = await Promise.all([1, 2, 3].map((leaf) => tar([{ name: `b/leaf${leaf}-1.dist-info/METADATA`, body: `leaf ${leaf}` }])));
    const images = leaves.map((leaf) => registry.push([{ bytes: base, mediaType: TAR }, { bytes: leaf, mediaType: TAR }]));
    const changesets = new LayerChangesets();
    const read = await Promise.all(images.map((image) => imageFiles(registry.client, "g/img", image, undefined, changesets)));
    expect(blobReads(registry, digestOf(base))).toBe(1);
    for (const leaf of leaves) expect(blobReads(registry, digestOf(leaf))).toBe(1);
    expect(changesets.counts).toEqual({ read: 4, reused: 2 });
    read.forEach((image, index) => expect(text(image.files)).toEqual({ "a/x-1.dist-info/METADATA": "x", [`b/leaf${index + 1}-1.dist-info/METADATA`]: `leaf ${index + 1}`, "var/lib/dpkg/status": "Package: base\n" }));
    // Without it, every image reads the base again.
    await imageFiles(registry.client, "g/img", images[0] as string);
    expect(blobReads(registry, digestOf(base))).toBe(2);
  });

  it("a manifest the caller has just read is not asked for again; one of another digest is refused", async () => {
    const registry = fakeRegistry();
    const layer = await tar([{ name: "var/lib/dpkg/status", body: "Package: base\n" }]);
    const image = registry.push([{ bytes: layer, mediaType: TAR }]);
    const other = registry.push([{ bytes: await tar([{ name: "c", body: "c" }]), mediaType: TAR }]);
    const manifestReads = (): number => registry.requests.filter((request) => request.includes("/manifests/")).length;
    const found = await registry.client.manifest("g/img", image);
    expect(manifestReads()).toBe(1);
    const read = await imageFiles(registry.client, "g/img", image, undefined, undefined, found);
    expect(text(read.files)).toEqual({ "var/lib/dpkg/status": "Package: base\n" });
    expect(manifestReads()).toBe(1);
    await expect(imageFiles(registry.client, "g/img", other, undefined, undefined, found)).rejects.toThrow(/the manifest given is sha256:[0-9a-f]{64}, not the one asked for/);
    expect(manifestReads()).toBe(1);
  });

  it("a layer hard-linking a file below takes it from whichever base it is applied over", async () => {
    const registry = fakeRegistry();
    const link = await tar([{ name: "b/x-1.dist-info/METADATA", type: "link", linkname: "a/x-1.dist-info/METADATA" }]);
    const bases = await Promise.all(["one", "two"].map((body) => tar([{ name: "a/x-1.dist-info/METADATA", body }])));
    const changesets = new LayerChangesets();
    const files = [];
    for (const base of bases) files.push(text((await imageFiles(registry.client, "g/img", registry.push([{ bytes: base, mediaType: TAR }, { bytes: link, mediaType: TAR }]), undefined, changesets)).files));
    expect(changesets.counts.reused).toBe(1);
    expect(files).toEqual([{ "a/x-1.dist-info/METADATA": "one", "b/x-1.dist-info/METADATA": "one" }, { "a/x-1.dist-info/METADATA": "two", "b/x-1.dist-info/METADATA": "two" }]);
    // Over a base without the target, the same layer is refused, naming that image.
    const bare = registry.push([{ bytes: await tar([{ name: "c", body: "c" }]), mediaType: TAR }, { bytes: link, mediaType: TAR }]);
    expect((await failure(imageFiles(registry.client, "g/img", bare, undefined, changesets))).message).toContain(`registry.test/g/img@${bare}, layer 2 of 2`);
  });

  it("a read that failed is not kept: the next image reads and checks the blob again", async () => {
    const registry = fakeRegistry();
    const good = await tar([{ name: "var/lib/dpkg/status", body: "Package: a\n" }]);
    const image = registry.push([{ bytes: good, mediaType: TAR }]);
    registry.tampered.set(digestOf(good), await tar([{ name: "var/lib/dpkg/status", body: "Package: b\n" }]));
    const changesets = new LayerChangesets();
    expect((await failure(imageFiles(registry.client, "g/img", image, undefined, changesets))).fault).toBe("integrity");
    registry.tampered.delete(digestOf(good));
    expect(text((await imageFiles(registry.client, "g/img", image, undefined, changesets)).files)).toEqual({ "var/lib/dpkg/status": "Package: a\n" });
    expect(blobReads(registry, digestOf(good))).toBe(2);
  });
});

describe("a zstd layer of many frames (zstd:chunked: a frame per file and skippable frames for its table of contents)", () => {
  it("reads every frame's files (review 118: Node's decompressor alone read the first frame's)", async () => {
    const compress = (zlib as unknown as { zstdCompressSync: (bytes: Buffer) => Buffer }).zstdCompressSync;
    const layer = await tar([{ name: "var/lib/dpkg/status", body: "Package: bash\n" }, { name: "etc/os-release", body: "ID=debian\n" }]);
    const toc = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0]), Buffer.from("TOC!")]);
    const bytes = Buffer.concat([compress(layer.subarray(0, 1024)), compress(layer.subarray(1024)), toc]);
    for (const mediaType of ["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.zstd"]) {
      const files = await filesOfLayers("img", [{ name: "layer 1 of 1", mediaType, open: async () => layerStream(bytes) }]);
      expect(text(files), mediaType).toEqual({ "etc/os-release": "ID=debian\n", "var/lib/dpkg/status": "Package: bash\n" });
    }
  });
});
