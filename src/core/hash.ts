/**
 * Content hashing of build contexts and layer fingerprints. No Pulumi here.
 *
 * A context digest covers what Docker would send for a build: every file not
 * excluded by `.dockerignore` (Docker's own matching rules, through
 * @balena/dockerignore), by relative path in sorted order, its contents and
 * its executable bit only. Timestamps, owners and the other mode bits are left
 * out on purpose: a fresh clone under another umask must hash the same.
 */
import { createHash } from "node:crypto";
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync, existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import dockerignore from "@balena/dockerignore";
import { mapLimited } from "./concurrency.js";
import { type Problem } from "./problems.js";

/** The catalog's own file in each layer folder (catalog.ts LAYER_FILE; kept here to stay import-free of it). */
const METADATA_FILE = "layer.yaml";

export interface ContextEntry {
  /** Relative path with `/` separators. */
  readonly path: string;
  readonly type: "file" | "symlink";
  readonly executable: boolean;
  /** For symlinks: the link text. */
  readonly target?: string;
  /** For files: the size in bytes when listed. */
  readonly size?: number;
}

/** Files Docker would send for this context, sorted, plus problems (symlinks escaping the context). */
export function listContext(contextDir: string, displayRoot: string = process.cwd()): { entries: ContextEntry[]; problems: Problem[] } {
  const ignoreFile = path.join(contextDir, ".dockerignore");
  // The package is CommonJS (module.exports = factory) but its types declare a default export.
  const matcher = (dockerignore as unknown as typeof dockerignore.default)();
  if (existsSync(ignoreFile)) {
    const patterns = readFileSync(ignoreFile, "utf8").split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
    matcher.add(patterns);
  }
  const entries: ContextEntry[] = [];
  const problems: Problem[] = [];
  const root = path.resolve(contextDir);
  const walk = (relativeDir: string): void => {
    const absoluteDir = path.join(root, relativeDir);
    for (const name of readdirSync(absoluteDir).sort()) {
      const relative = relativeDir === "" ? name : `${relativeDir}/${name}`;
      const absolute = path.join(root, relative);
      const stat = lstatSync(absolute);
      if (stat.isDirectory()) {
        // Walk ignored folders too: a later "!pattern" may bring files back, as in Docker.
        walk(relative);
        continue;
      }
      if (matcher.ignores(relative)) continue;
      if (stat.isSymbolicLink()) {
        const target = readlinkSync(absolute);
        const resolved = path.resolve(path.dirname(absolute), target);
        if (resolved !== root && !resolved.startsWith(`${root}${path.sep}`)) {
          problems.push({
            file: path.relative(displayRoot, absolute) || absolute,
            message: `the symlink points outside the build context (to ${target})`,
            fix: "copy the file into the layer folder, or add the link to .dockerignore",
          });
        }
        entries.push({ path: relative, type: "symlink", executable: false, target });
      } else if (stat.isFile()) {
        entries.push({ path: relative, type: "file", executable: (stat.mode & 0o111) !== 0, size: stat.size });
      }
    }
  };
  walk("");
  return { entries, problems };
}

/** Files up to this size are read whole: a stream's setup costs more than such a file's bytes. */
const WHOLE_READ_BYTES = 1 << 20;

/** sha256 of a file; `size` (as listed) picks one read or a stream, so a base rootfs never sits in memory whole. */
async function fileDigest(file: string, size?: number): Promise<string> {
  const hash = createHash("sha256");
  if ((size ?? (await stat(file)).size) <= WHOLE_READ_BYTES) return hash.update(await readFile(file)).digest("hex");
  for await (const chunk of createReadStream(file, { highWaterMark: WHOLE_READ_BYTES })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * sha256 over the Dockerfile and the context entries. Throws when the context
 * holds a symlink that escapes it (callers validate with listContext first).
 */
export async function contextDigest(contextDir: string, dockerfile: string): Promise<string> {
  const { entries: sent, problems } = listContext(contextDir);
  // layer.yaml is catalog data (kind, parent, version), not image content: the
  // version enters through the tag, and a bump alone must read as a retag.
  const entries = sent.filter((entry) => entry.path !== METADATA_FILE);
  if (problems.length > 0) throw new Error(problems.map((problem) => `${problem.file}: ${problem.message}`).join("\n"));
  const hash = createHash("sha256");
  hash.update(`dockerfile\0${await fileDigest(dockerfile)}\n`);
  // Hash files in order but read them a few at a time: small contexts are dominated by open/close latency.
  const digests = await mapLimited(entries, 8, (entry) =>
    entry.type === "file" ? fileDigest(path.join(contextDir, entry.path), entry.size) : Promise.resolve(""));
  entries.forEach((entry, index) => {
    if (entry.type === "symlink") hash.update(`link\0${entry.path}\0${entry.target ?? ""}\n`);
    else hash.update(`file\0${entry.path}\0${entry.executable ? "x" : "-"}\0${digests[index] ?? ""}\n`);
  });
  return `sha256:${hash.digest("hex")}`;
}

export interface LayerInputs {
  readonly contextDigest: string;
  /** Build arguments that are not the parent reference (the parent enters through its fingerprint). */
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly platform: string;
}

/** A digest of one layer's own build inputs: context, own build arguments, platform. */
export function layerInputsDigest(inputs: LayerInputs): string {
  const hash = createHash("sha256");
  hash.update(`context\0${inputs.contextDigest}\n`);
  for (const name of Object.keys(inputs.buildArgs).sort()) hash.update(`arg\0${name}\0${inputs.buildArgs[name] ?? ""}\n`);
  hash.update(`platform\0${inputs.platform}\n`);
  return `sha256:${hash.digest("hex")}`;
}

/** A layer's fingerprint: its own inputs digest chained to its parent's fingerprint, so a change cascades down. */
export function layerFingerprint(inputsDigest: string, parentFingerprint?: string): string {
  return `sha256:${createHash("sha256").update(`inputs\0${inputsDigest}\nparent\0${parentFingerprint ?? ""}\n`).digest("hex")}`;
}
