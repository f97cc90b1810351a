/**
 * Registry content kept on local disk by digest: the manifests and image
 * configs the lookups read, so that later runs (and Strata's provider, in the
 * same run) ask the registry for them no more. Content-addressed: an entry is
 * the exact bytes whose sha256 is its name, checked when written and again
 * when read, so an entry can be missing but never stale or wrong; a tag is
 * never cached, only what a digest names. Entries are small (a manifest or a
 * config is a few KiB) and only released images' are written, so the folder
 * grows by a few hundred KiB per release of a 200-layer tree; deleting it at
 * any time only costs requests.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { removeQuietly, writeFileWhole } from "../core/files.js";

const DIGEST = /^sha256:([0-9a-f]{64})$/;

export class BlobCache {
  constructor(readonly dir: string) {}

  private fileOf(digest: string): string | undefined {
    const hex = DIGEST.exec(digest)?.[1];
    return hex === undefined ? undefined : path.join(this.dir, "sha256", hex.slice(0, 2), hex);
  }

  /** The bytes named by `digest`, or undefined when absent (or damaged: then removed). */
  read(digest: string): Buffer | undefined {
    const file = this.fileOf(digest);
    if (file === undefined) return undefined;
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      return undefined;
    }
    if (sha256Digest(bytes) === digest) return bytes;
    // A cache it may not change (read-only) keeps the entry: every read of it stays a miss.
    removeQuietly(file);
    return undefined;
  }

  /**
   * Keeps `bytes` under `digest` when they are what it names; anything else is ignored. Never throws.
   * An entry there already, of the same size, is left as it is: a tag's manifest is asked of the
   * registry on every run and handed here each time (a no-op at N=200 spent 0.1-0.2 CPU-s of the
   * program rewriting entries). One of another size (empty, cut short) is written again here; one
   * of the same size but other bytes is removed by `read`, then written again.
   */
  write(digest: string, bytes: Buffer): void {
    const file = this.fileOf(digest);
    if (file === undefined) return;
    try {
      // Inside the try: stat throws for more than a missing file (a folder it may not read, a name too long).
      if (statSync(file, { throwIfNoEntry: false })?.size === bytes.length || sha256Digest(bytes) !== digest) return;
      mkdirSync(path.dirname(file), { recursive: true });
      // Whole: concurrent runs never see half an entry.
      writeFileWhole(file, bytes);
    } catch {
      // A cache that cannot be written (read-only home, full disk) only costs requests.
    }
  }
}

/** `sha256:<hex>` of bytes: the name a registry gives a manifest or a blob. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * The cache every Strata process of a machine shares: $STRATA_BLOB_CACHE, else `registry-blobs` in
 * the toolchain cache ($STRATA_HOME, ~/.cache/strata). STRATA_BLOB_CACHE=off: none.
 */
export function defaultBlobCache(env: NodeJS.ProcessEnv = process.env): BlobCache | undefined {
  const chosen = env.STRATA_BLOB_CACHE;
  if (chosen === "off") return undefined;
  if (chosen !== undefined && chosen !== "") return new BlobCache(chosen);
  return new BlobCache(path.join(env.STRATA_HOME ?? path.join(homedir(), ".cache", "strata"), "registry-blobs"));
}
