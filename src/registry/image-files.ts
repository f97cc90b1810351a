/**
 * A few files of an image, read out of its layers in the registry without a Docker engine: what
 * the SBOM needs (core/sbom.ts' isSbomSource), from an image of a few hundred MB.
 *
 * The layers are applied in order as a container runtime would (OCI image spec, *Image Layer
 * Filesystem Changeset*): a later entry replaces an earlier one at its path (a non-directory hides
 * what was below it), `.wh.<name>` deletes `<name>` of the layers below, `.wh..wh..opq` hides every
 * entry of the layers below in its directory; both act on the layers below only, never on their
 * own layer's entries. Only the wanted files' contents are kept, and every symlink's target (a few
 * thousand short strings), so that a wanted path that is a symlink (Debian's etc/os-release ->
 * ../usr/lib/os-release) is read where it points.
 *
 * Streamed: a layer's blob goes through its digest check, the decompressor and the tar parser
 * (modern-tar, strict: a bad header checksum or an archive that ends before its end-of-archive
 * blocks is an error) chunk by chunk; nothing holds a whole layer. A layer counts only once all of
 * its bytes have arrived and matched its digest.
 *
 * Fails closed: a layer whose bytes do not match its digest, an unknown layer media type, a
 * truncated gzip or tar, a path that leaves the root, a wanted symlink pointing at a file that was
 * not kept: each is an error naming the image and the layer, never fewer files.
 *
 * Read once per process with a LayerChangesets: what a layer does (its changeset) depends on its
 * bytes alone, and a layer is content-addressed, so the 200 images of a tree that share the base's
 * large layer read its blob once, not 200 times. A failed read is not kept: the next image reads
 * (and checks) the blob again.
 */
import path from "node:path";
import { Duplex } from "node:stream";
import zlib from "node:zlib";
import { createTarDecoder, type ParsedTarEntry } from "modern-tar";
import { isSbomSource, SBOM_FIXED_FOLDERS } from "../core/sbom.js";
import { type ImageConfig, type ManifestResult, type RegistryClient, RegistryError } from "./client.js";
import { isIndexManifest } from "./copy.js";
import { nodeZstd, zstdFramesDecompressor } from "./zstd-frames.js";

/** What reading an image's files needs of a registry client. */
export type ImageFilesRegistry = Pick<RegistryClient, "registry" | "manifest" | "configOf" | "blobStream">;

/** How a layer blob is compressed, by its media type; any other type is refused (foreign and non-distributable layers included: their bytes may not be in the registry). */
const LAYER_COMPRESSION: Readonly<Record<string, "gzip" | "zstd" | "none">> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  // BuildKit's zstd layer with Docker's media types (compression=zstd, oci-mediatypes=false).
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
};

const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set(["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"]);
const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set(["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"]);

/** Symlinks followed to read one wanted path, at most (Linux's own limit, ELOOP). */
const MAX_SYMLINKS = 40;

/**
 * How long a layer's read may go without progress (a byte taken from the blob, or a tar entry read)
 * before it is given up, as an error naming the layer: a read that stalls must not hang the run.
 * The blob's own stream gives up a download after the registry's request timeout without a byte
 * (client.ts), so what this catches is a parser that stopped taking the bytes.
 */
export const LAYER_STALL_MS = 120_000;

/** One layer to apply. */
export interface LayerSource {
  /** Names the layer in messages: `layer 2 of 5 (sha256:…)`. */
  readonly name: string;
  readonly mediaType: string;
  /** `sha256:…` of the blob: what a LayerChangesets keeps its changeset under (none kept without it). */
  readonly digest?: string;
  /** Its bytes as stored (compressed as `mediaType` says), already checked against its digest as they pass. */
  open(): Promise<ReadableStream<Uint8Array>>;
  /** LAYER_STALL_MS, unless tests say otherwise. */
  readonly stallMs?: number;
}

/** What a path holds after some layers, for the paths this reader keeps. */
type Node = { readonly kind: "file"; readonly content: Buffer } | { readonly kind: "symlink"; readonly target: string };

/** What one layer does to the layers below it. */
interface Changeset {
  /** Every path the layer has an entry at (not whiteouts): what was below at that path is replaced. */
  readonly replaced: Set<string>;
  /** Paths under which the layers below are hidden: whiteouts, opaque directories, non-directories the layer puts in place of a directory. */
  readonly hidesBelow: Set<string>;
  /** Paths the layer whites out (the path itself goes, not only what is under it). */
  readonly whiteouts: Set<string>;
  /** The kept nodes the layer adds. */
  readonly nodes: Map<string, Node>;
  /**
   * Wanted hard links to a file of the layers below (path → target), resolved when the layer is
   * applied: so the changeset depends on the layer's bytes alone, whatever is below it.
   */
  readonly linksBelow: Map<string, string>;
}

/**
 * The changesets of layers read in this process, by blob digest and media type (and what was
 * wanted), each read at most once at a time: a second image with the same layer waits for the
 * first read instead of reading the blob again. Only a read that succeeded is kept.
 */
export class LayerChangesets {
  private readonly byWanted = new Map<(path: string) => boolean, Map<string, Promise<Changeset>>>();
  /** Layer blobs read from the registry, and layers taken from an earlier read instead (for measurements). */
  readonly counts = { read: 0, reused: 0 };

  /** @internal The changeset of `layer`, read with `read` unless kept already. */
  changeset(layer: LayerSource, wanted: (path: string) => boolean, read: () => Promise<Changeset>): Promise<Changeset> {
    if (layer.digest === undefined) return read();
    let kept = this.byWanted.get(wanted);
    if (kept === undefined) this.byWanted.set(wanted, (kept = new Map()));
    const key = `${layer.mediaType}\0${layer.digest}`;
    const found = kept.get(key);
    if (found !== undefined) {
      this.counts.reused++;
      return found;
    }
    this.counts.read++;
    const reading = read();
    kept.set(key, reading);
    reading.catch(() => kept.delete(key));
    return reading;
  }
}

/**
 * Applies `layers` in order and returns the final contents of the wanted files (path inside the
 * image, no leading `/`). A wanted path that is a symlink in the final filesystem gives the
 * contents of the file it points to; one that points nowhere (dangling) is absent, as it is in a
 * container.
 */
export async function filesOfLayers(image: string, layers: readonly LayerSource[], wanted: (path: string) => boolean = isSbomSource, changesets?: LayerChangesets): Promise<Map<string, Buffer>> {
  const fixedFolders = wanted === isSbomSource ? SBOM_FIXED_FOLDERS : [];
  let state = new Map<string, Node>();
  for (const layer of layers) {
    const where = `${image}, ${layer.name}`;
    const read = (): Promise<Changeset> => readLayer(where, layer, wanted);
    const changes = await (changesets === undefined ? read() : changesets.changeset(layer, wanted, read));
    state = applyChangeset(where, state, changes, wanted);
  }
  refuseHiddenFolders(image, state, fixedFolders);
  return resolveWanted(image, state, wanted);
}

/**
 * Refuses an image where a folder on the way to a file read at a fixed path (`fixedFolders`, or
 * one above it) is a symlink: the files behind it were not kept (they are at the link's target,
 * which is not wanted), so the SBOM would list no packages where a container has them.
 */
function refuseHiddenFolders(image: string, state: ReadonlyMap<string, Node>, fixedFolders: readonly string[]): void {
  for (const folder of fixedFolders) {
    const parts = folder.split("/");
    for (let depth = 1; depth <= parts.length; depth++) {
      const on = parts.slice(0, depth).join("/");
      const node = state.get(on);
      if (node?.kind === "symlink") {
        throw new RegistryError(`${image}: ${on} is a symlink to ${node.target}, so the files Strata reads in ${folder} are behind it, where it does not look; their packages cannot be listed, and the SBOM is not made without them (make ${on} a folder in the image)`, undefined, "a folder Strata reads that is a symlink", "malformed");
      }
    }
  }
}

/**
 * Reads one layer's changes; every failure is a RegistryError naming the image and the layer. A
 * wanted hard link whose file came earlier in the layer at a path not kept (a tar carries a
 * hard-linked file's bytes at its first path only, whichever order the builder wrote them in) has
 * the layer read once more, keeping those files too: rare, and one more read of the blob.
 */
async function readLayer(where: string, layer: LayerSource, wanted: (path: string) => boolean): Promise<Changeset> {
  const first = await readLayerOnce(where, layer, wanted);
  if (first.linkedDropped.size === 0) return first.changes;
  const targets = new Set(first.linkedDropped.values());
  const again = await readLayerOnce(where, layer, (entryPath) => wanted(entryPath) || targets.has(entryPath));
  const [missing] = again.linkedDropped;
  if (missing !== undefined) throw hardLinkError(where, missing[0], missing[1], wanted);
  return again.changes;
}

/** One read of a layer: its changes, and the wanted hard links (path → target) to a file of it that was not kept. */
async function readLayerOnce(where: string, layer: LayerSource, wanted: (path: string) => boolean): Promise<{ changes: Changeset; linkedDropped: ReadonlyMap<string, string> }> {
  const compression = LAYER_COMPRESSION[layer.mediaType];
  if (compression === undefined) {
    throw new RegistryError(`${where}: media type "${layer.mediaType}" is not a layer Strata can read (a tar, gzip- or zstd-compressed: ${Object.keys(LAYER_COMPRESSION).join(", ")}), so the image's files cannot be listed; push the image with one of those layer types`, undefined, "an unknown layer media type", "malformed");
  }
  const changes: Changeset = { replaced: new Set(), hidesBelow: new Set(), whiteouts: new Set(), nodes: new Map(), linksBelow: new Map() };
  const dropped: Dropped = { files: new Set(), linkedTo: new Map() };
  let bytes: ReadableStream<Uint8Array>;
  try {
    bytes = await layer.open();
  } catch (error) {
    throw layerError(where, error);
  }
  const stallMs = layer.stallMs ?? LAYER_STALL_MS;
  let progress = Date.now();
  // Aborted when the read stalls: the blob's stream is cancelled (its download closed), not left open.
  const abort = new AbortController();
  const watched = bytes.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      progress = Date.now();
      controller.enqueue(chunk);
    },
  }), { signal: abort.signal });
  const entries = watched.pipeThrough(decompressor(compression)).pipeThrough(createTarDecoder({ strict: true }));
  let watchdog: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    watchdog = setInterval(() => {
      if (Date.now() - progress < stallMs) return;
      // layerError puts the layer's name in front.
      const stall = new RegistryError(`reading the layer made no progress for ${stallMs < 1000 ? `${stallMs} ms` : `${Math.round(stallMs / 1000)} s`} (no byte taken from the blob, no tar entry read), so its files cannot be read and nothing is made of them; run again, and if it stalls again at the same layer, report it with the image`, undefined, "a layer read that stalled");
      abort.abort(stall);
      reject(stall);
    }, Math.min(1000, stallMs));
  });
  try {
    // The loop ends when the decoder's input has ended: after the blob's last byte and its digest check.
    await Promise.race([(async () => {
      for await (const entry of entries) {
        progress = Date.now();
        await applyEntry(where, entry, wanted, changes, dropped);
      }
    })(), stalled]);
  } catch (error) {
    throw layerError(where, error);
  } finally {
    clearInterval(watchdog);
  }
  return { changes, linkedDropped: dropped.linkedTo };
}

/** A layer's files whose bytes were dropped (not wanted), and the wanted hard links to one of them (path → target). */
interface Dropped {
  readonly files: Set<string>;
  readonly linkedTo: Map<string, string>;
}

function decompressor(compression: "gzip" | "zstd" | "none"): ReadableWritablePair<Uint8Array, Uint8Array> {
  if (compression === "none") return new TransformStream<Uint8Array, Uint8Array>();
  if (compression === "gzip") return Duplex.toWeb(zlib.createGunzip()) as ReadableWritablePair<Uint8Array, Uint8Array>;
  const zstd = nodeZstd();
  if (zstd === undefined) throw new RegistryError(`a zstd-compressed layer needs Node.js 22.15 or later (this is ${process.version})`, undefined, "a zstd layer this Node.js cannot read", "malformed");
  // Every frame: a layer may be written as many (zstd:chunked), and Node's decompressor reads one.
  return Duplex.toWeb(zstdFramesDecompressor(zstd)) as ReadableWritablePair<Uint8Array, Uint8Array>;
}

/** An error while reading a layer, as a RegistryError whose message names the image and the layer (once). */
function layerError(where: string, error: unknown): RegistryError {
  if (error instanceof RegistryError && error.message.startsWith(`${where}: `)) return error;
  if (error instanceof RegistryError) {
    const wrapped = new RegistryError(`${where}: ${error.message}`, error.status, error.answer, error.fault);
    (wrapped as { cause?: unknown }).cause = error;
    return wrapped;
  }
  const failure = error as { message?: string; code?: string; cause?: { message?: string } } | undefined;
  // zlib says "unexpected end of file" (Z_BUF_ERROR) for a cut-off stream, but through the web
  // stream adapter as a TypeError without a message whose cause says it; modern-tar says "Tar archive is truncated."
  const detail = (failure?.message || failure?.cause?.message || String(error)).replace(/\.$/, "");
  const wrapped = new RegistryError(`${where}: the layer is not a valid tar archive as its media type says (${detail}${failure?.code ? `, ${failure.code}` : ""}); its files cannot be read, so none are listed: rebuild and push the image`, undefined, "a layer that does not unpack", "malformed");
  (wrapped as { cause?: unknown }).cause = error;
  return wrapped;
}

/** A tar entry's path inside the image: no `./` or `/` in front, none behind; one that leaves the root is refused. */
function imagePath(where: string, name: string): string {
  const normalized = path.posix.normalize(`/${name}`).replace(/\/+$/, "");
  // normalize() would stop `..` at the root; a layer that says `..` at all is not one a runtime unpacks.
  if (name.split("/").includes("..")) throw new RegistryError(`${where}: the entry "${name}" points outside the image's root; the layer is not a valid image layer`, undefined, "a layer entry outside the root", "malformed");
  return normalized.slice(1);
}

async function applyEntry(where: string, entry: ParsedTarEntry, wanted: (path: string) => boolean, changes: Changeset, dropped: Dropped): Promise<void> {
  const { header } = entry;
  const entryPath = imagePath(where, header.name);
  const type = header.type ?? "file";
  const keep = type === "file" && wanted(entryPath);
  // Every body is read to its end, a body not kept too (its bytes dropped as they come): the decoder
  // waits for it before the next entry. Never cancelled: modern-tar 0.8's decoder, a body cancelled
  // and a later one read, stalls for good on some chunkings (the sample's Python layer; a fuzz of
  // random archives: about one in five), where reading every body to its end never did.
  let content: Buffer | undefined;
  if (keep) content = Buffer.from(await new Response(entry.body).arrayBuffer());
  else for await (const _chunk of entry.body) void _chunk;
  if (entryPath === "") return;
  if (type === "file" && !keep) dropped.files.add(entryPath);
  else dropped.files.delete(entryPath);
  const base = path.posix.basename(entryPath);
  const directory = path.posix.dirname(entryPath) === "." ? "" : path.posix.dirname(entryPath);
  if (base.startsWith(".wh.")) {
    if (base === ".wh..wh..opq") changes.hidesBelow.add(directory);
    // Other `.wh..wh.` names are aufs' own bookkeeping (.wh..wh.plnk, .wh..wh.aufs), not whiteouts.
    else if (!base.startsWith(".wh..wh.")) {
      const hidden = directory === "" ? base.slice(4) : `${directory}/${base.slice(4)}`;
      changes.whiteouts.add(hidden);
      changes.hidesBelow.add(hidden);
    }
    return;
  }
  changes.replaced.add(entryPath);
  changes.nodes.delete(entryPath);
  changes.linksBelow.delete(entryPath);
  // A directory merges with one below (unless a whiteout or an opaque marker of this layer hides it); anything else hides it.
  if (type !== "directory") changes.hidesBelow.add(entryPath);
  if (content !== undefined) {
    changes.nodes.set(entryPath, { kind: "file", content });
  } else if (type === "symlink") {
    changes.nodes.set(entryPath, { kind: "symlink", target: header.linkname ?? "" });
  } else if (type === "link" && wanted(entryPath)) {
    // A hard link names an earlier entry of this layer or a file below (a path in the image, not relative).
    const target = imagePath(where, header.linkname ?? "");
    const linked = changes.nodes.get(target);
    // A target this layer has not put (yet) is one of the layers below: looked up when the layer is applied over them.
    if (linked === undefined && !changes.replaced.has(target)) changes.linksBelow.set(entryPath, target);
    // A file of this layer whose bytes were dropped: readLayer reads the layer again, keeping them.
    else if (linked === undefined && dropped.files.has(target)) dropped.linkedTo.set(entryPath, target);
    else if (linked?.kind !== "file") throw hardLinkError(where, entryPath, target, wanted);
    else changes.nodes.set(entryPath, linked);
  }
}

function hardLinkError(where: string, entryPath: string, target: string, wanted: (path: string) => boolean): RegistryError {
  return new RegistryError(`${where}: ${entryPath} is a hard link to ${target}, which ${wanted(target) ? "the image does not hold as a file" : "is not a file Strata reads"}, so its contents cannot be known; the SBOM is not made without them`, undefined, "a hard link Strata cannot follow", "malformed");
}

/** The layers below with a layer's changes applied: what it hides removed, then what it adds. */
function applyChangeset(where: string, below: ReadonlyMap<string, Node>, changes: Changeset, wanted: (path: string) => boolean): Map<string, Node> {
  const next = new Map<string, Node>();
  for (const [nodePath, node] of below) {
    if (changes.replaced.has(nodePath) || changes.whiteouts.has(nodePath) || hiddenBy(nodePath, changes.hidesBelow)) continue;
    next.set(nodePath, node);
  }
  for (const [nodePath, target] of changes.linksBelow) {
    const linked = below.get(target);
    if (linked?.kind !== "file") throw hardLinkError(where, nodePath, target, wanted);
    next.set(nodePath, linked);
  }
  for (const [nodePath, node] of changes.nodes) next.set(nodePath, node);
  return next;
}

/** Whether a strict ancestor of `nodePath` is in `hiders` (`""`, the root, hides everything below). */
function hiddenBy(nodePath: string, hiders: ReadonlySet<string>): boolean {
  if (hiders.size === 0) return false;
  if (hiders.has("")) return true;
  for (let slash = nodePath.indexOf("/"); slash >= 0; slash = nodePath.indexOf("/", slash + 1)) {
    if (hiders.has(nodePath.slice(0, slash))) return true;
  }
  return false;
}

/** The wanted paths' contents in the final filesystem, symlinks followed (in the path's directories too). */
function resolveWanted(image: string, state: ReadonlyMap<string, Node>, wanted: (path: string) => boolean): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const [nodePath, node] of state) {
    if (!wanted(nodePath)) continue;
    if (node.kind === "file") {
      files.set(nodePath, node.content);
      continue;
    }
    const target = resolve(image, state, nodePath);
    if (target === undefined) continue;
    const found = state.get(target);
    if (found?.kind === "file") files.set(nodePath, found.content);
    else if (!wanted(target)) {
      throw new RegistryError(`${image}: ${nodePath} is a symlink to ${target}, a file Strata does not read, so its contents cannot be known; the SBOM is not made without them`, undefined, "a symlink Strata cannot follow", "malformed");
    }
    // A wanted target that no layer holds: the symlink dangles, and the file is absent in a container too.
  }
  return files;
}

/** Where a path leads with every symlink on the way followed; undefined when it loops (too many links), as ELOOP. */
function resolve(image: string, state: ReadonlyMap<string, Node>, start: string): string | undefined {
  let pending = start.split("/");
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part].join("/");
    const node = state.get(candidate);
    if (node?.kind !== "symlink") {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new RegistryError(`${image}: ${start} goes through more than ${MAX_SYMLINKS} symlinks (a loop), so its contents cannot be known; the SBOM is not made without them`, undefined, "a symlink loop", "malformed");
    }
    // An absolute target starts at the image's root; a relative one at the link's directory.
    if (node.target.startsWith("/")) resolved.length = 0;
    pending = [...node.target.split("/"), ...pending];
  }
  return resolved.join("/");
}

/** The image manifest's layers, each opened as a checked blob stream. */
export interface ImageFiles {
  /** Wanted path → contents. */
  readonly files: Map<string, Buffer>;
  readonly config: ImageConfig;
  /** How many layers were read. */
  readonly layers: number;
}

/**
 * The wanted files of one image in the registry, by its manifest digest (an image manifest, Docker
 * v2 or OCI: for an index, the caller picks the platform's manifest), and the image's config.
 * `readManifest`: the manifest of that digest as the caller just read it from the registry, so it
 * is not asked for twice; it must be the answer for exactly `digest`.
 */
export async function imageFiles(client: ImageFilesRegistry, repository: string, digest: string, wanted: (path: string) => boolean = isSbomSource, changesets?: LayerChangesets, readManifest?: ManifestResult): Promise<ImageFiles> {
  const image = `${client.registry}/${repository}@${digest}`;
  if (readManifest !== undefined && readManifest.digest !== digest) throw new Error(`imageFiles: ${image}: the manifest given is ${readManifest.digest}, not the one asked for`);
  const found = readManifest ?? await client.manifest(repository, digest);
  if (found === undefined) throw new RegistryError(`${image}: the registry has no such manifest (HTTP 404); its files cannot be read`, 404, "no such manifest");
  const mediaType = found.manifest.mediaType ?? found.mediaType;
  if (isIndexManifest(found.mediaType, found.manifest)) {
    throw new RegistryError(`${image} is an image index (one image per platform); read the files of one of its images: pick the platform's manifest digest from the index`, undefined, "an index where an image was expected", "malformed");
  }
  if (!IMAGE_MANIFEST_TYPES.has(mediaType)) {
    throw new RegistryError(`${image}: its manifest has media type "${mediaType}", not an image manifest (${[...IMAGE_MANIFEST_TYPES].join(", ")}); its files cannot be read`, undefined, "not an image manifest", "malformed");
  }
  const configType = found.manifest.config?.mediaType;
  if (configType !== undefined && !IMAGE_CONFIG_TYPES.has(configType)) {
    throw new RegistryError(`${image}: its config has media type "${configType}": an artifact (a signature, an attestation), not an image with files`, undefined, "not an image", "malformed");
  }
  const config = await client.configOf(repository, found);
  if (config === undefined) throw new RegistryError(`${image}: its manifest names no config; it is not an image`, undefined, "not an image", "malformed");
  const layers = found.manifest.layers ?? [];
  const sources = layers.map((layer, index): LayerSource => ({
    name: `layer ${index + 1} of ${layers.length} (${layer.digest})`,
    mediaType: layer.mediaType ?? "",
    digest: layer.digest,
    open: () => client.blobStream(repository, layer.digest, layer.size),
  }));
  return { files: await filesOfLayers(image, sources, wanted, changesets), config, layers: layers.length };
}
