/**
 * What git says about the checkout a stack builds from (issue 29): the repository, HEAD's commit and
 * whether the tree is clean, for the provenance of every image; and whether a commit is reviewed
 * (an ancestor of the trust policy's reviewedRef), for the promotion gate.
 *
 * Fails closed: what git cannot answer is an error or "could not tell", never "clean" or "reviewed".
 */
import { execFile, spawn } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { createReadStream, type Dirent, lstatSync, readdirSync, type Stats } from "node:fs";
import { lstat, mkdtemp, readFile, readlink, realpath, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { mapLimited } from "../core/concurrency.js";
import { UserError } from "../core/problems.js";
import { type SourceState } from "../core/provenance.js";
import { type ReviewAnswer } from "../core/trust-verdict.js";
import { reviewedRefProblem } from "../core/trust-policy.js";

/** Milliseconds one git command may take: these are local reads; a hung one is a broken checkout. */
const GIT_TIMEOUT_MS = 30_000;

interface GitResult {
  /** The exit code; undefined when git did not run or was killed (missing, timed out). */
  readonly code?: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Why git did not run to an exit code. */
  readonly failure?: string;
}

/**
 * A graft file that cannot exist (nothing is under /dev/null): git then reads no grafts, and says
 * nothing. /dev/null itself is a file to git, which prints its "grafts are deprecated" hint on
 * every call, before the message a failure's last line is taken from.
 */
const NO_GRAFT_FILE = "/dev/null/no-grafts";

/**
 * The caller's variables that point git at another repository, index or object store (git
 * rev-parse --local-env-vars, its config ones aside), as a hook or a CI wrapper that runs Strata
 * may have them: git would answer about that one. And two that make git read another config or
 * attributes than this code does: GIT_CONFIG (in git 2.39 it points `git config` alone at one
 * file, so machineSettings would read no core.attributesFile or core.autocrlf while status and
 * cat-file --filters use them) and GIT_ATTR_SOURCE (git 2.40 on: attributes from another tree;
 * its config twin, attr.tree, is a machine conversion: machineConversion). Config in the
 * environment (GIT_CONFIG_GLOBAL, GIT_CONFIG_COUNT…, a CI's safe.directory) passes, as
 * ~/.gitconfig does: Strata reads the same config through the same git (machineSettings) and
 * overrides what it must per call.
 */
const ELSEWHERE = new Set(["GIT_CONFIG", "GIT_ATTR_SOURCE", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX", "GIT_SHALLOW_FILE", "GIT_REPLACE_REF_BASE"]);

/**
 * The environment every git call here runs in: the caller's without ELSEWHERE, and then LC_ALL=C:
 * messages the user reads are git's own, in one language; GIT_OPTIONAL_LOCKS=0: a status must not
 * take the index lock a concurrent git command holds; GIT_NO_REPLACE_OBJECTS and no graft file: the
 * objects as they are, not as `git replace` (refs a mirror fetch brings in) or `.git/info/grafts`
 * make them look: a replaced commit could give an unreviewed commit reviewed parents, or HEAD
 * another tree for status to compare the checkout with; GIT_ATTR_NOSYSTEM: no system-wide
 * attributes file, which git reads at its own build prefix (/etc for Debian's, elsewhere for a git
 * found first on PATH) where machineConversion could not know to look: without it, git compares
 * more strictly, never less.
 */
const gitEnv = (): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !ELSEWHERE.has(name))),
  LC_ALL: "C", GIT_OPTIONAL_LOCKS: "0", GIT_NO_REPLACE_OBJECTS: "1", GIT_GRAFT_FILE: NO_GRAFT_FILE, GIT_ATTR_NOSYSTEM: "1",
});

/**
 * Given to every git call here: the caches git reads a commit (its tree, its parents) from without
 * checking it against the commit's id, the commit-graph file and the multi-pack index, each
 * editable in .git/objects to give HEAD another tree (a clean status) or a reviewed commit an
 * unreviewed parent. git then reads the objects themselves.
 */
const UNCACHED = ["-c", "core.commitGraph=false", "-c", "core.multiPackIndex=false"];

/** A full commit id (SHA-1 or SHA-256), the only form Strata hands git as a commit. */
const FULL_COMMIT = /^([a-f0-9]{40}|[a-f0-9]{64})$/;

/**
 * `git -C dir … args`. Its output is read as UTF-8, or as `bytes`: latin1, one character a byte, so
 * a name that is not UTF-8 keeps its bytes (as UTF-8 two such names could both read as U+FFFD).
 * Its messages (stderr) are text, read as UTF-8 either way.
 */
function git(dir: string, args: readonly string[], input?: string, read: "utf8" | "bytes" = "utf8"): Promise<GitResult> {
  return new Promise((resolve) => {
    const child = execFile("git", ["-C", dir, ...UNCACHED, ...args], { timeout: GIT_TIMEOUT_MS, maxBuffer: 64 << 20, env: gitEnv(), encoding: "buffer" }, (error, stdoutBytes, stderrBytes) => {
      const stdout = stdoutBytes.toString(read === "bytes" ? "latin1" : "utf8");
      const stderr = stderrBytes.toString("utf8");
      if (error === null) return resolve({ code: 0, stdout, stderr });
      const code = (error as { code?: unknown }).code;
      if (typeof code === "number") return resolve({ code, stdout, stderr });
      const killed = (error as { killed?: boolean }).killed === true;
      resolve({ stdout, stderr, failure: code === "ENOENT" ? "git is not installed (not on PATH)" : killed ? `git ${args[0] ?? ""} took longer than ${GIT_TIMEOUT_MS / 1000} s` : error.message });
    });
    // A git that exits before reading all of it (or never ran) closes the pipe: its exit says what went wrong.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input);
  });
}

/** Why git did not run, or the line it ended with (its `fatal:` line, before any advice after it), or its last line. */
function reasonOf(result: GitResult): string {
  const lines = result.stderr.trim().split("\n");
  return result.failure ?? lines.find((line) => line.startsWith("fatal: ")) ?? (lines.pop() || `exit ${String(result.code)}`);
}

/**
 * A remote URL fit to publish: any user and password in it (`https://ci:<token>@host/…`) is removed,
 * since the repository goes into provenance that anyone who can pull may read.
 */
export function publishableRemote(url: string): string {
  return url.trim().replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1");
}

/**
 * Git's settings that would let a changed tree look clean, off for the checks below: a file system
 * monitor or untracked cache that has not seen a change, stat checks told to skip a file's ctime
 * (a same-size edit with its mtime put back would pass), names compared without case (an untracked
 * A.TXT beside a tracked a.txt would pass, and a build context takes it), modes not compared (an
 * executable bit set here, which a build's COPY keeps, would pass).
 */
const NOTHING_CACHED = ["-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false", "-c", "core.trustctime=true", "-c", "core.checkStat=default", "-c", "core.ignoreCase=false", "-c", "core.fileMode=true"];

/**
 * Whether the working tree at `top` is HEAD's commit, but for the files that commit's own
 * `.gitignore` files ignore (what a build makes, such as the base layer's `rootfs.tar`: their bytes
 * are in the layer's fingerprint, which the provenance records). Each way git can be told not to
 * show a change counts as one:
 * - tracked changes, staged or not, submodules included whatever `diff.ignoreSubmodules` or a
 *   submodule's `ignore=` says;
 * - untracked files, those ignored only by this machine's rules (`.git/info/exclude`,
 *   `core.excludesFile`) included: they are not in the commit, and a build context takes them;
 * - an untracked `.gitignore` (one that ignores itself hides what it names) or `.gitattributes`
 *   (one that is ignored converts what it names);
 * - a tracked file whose bytes (a symlink's target) are not what checking out the index writes,
 *   or that is gone, whatever git's stat check says or a file's assume-unchanged or skip-worktree
 *   flag (contentDifference; a sparse checkout is dirty: files of the commit are not there);
 * - a conversion (a filter, line endings, an encoding) this machine sets on a tracked file, by
 *   `core.autocrlf` or its own attributes (machineConversion): git compares what it makes of a
 *   file, not its bytes;
 * - what git never shows and a build context takes (hiddenFromGit): an empty folder, a `.git`
 *   inside the checkout's folders, a tracked file with the setuid or setgid bit;
 * - each submodule the same way, and one not checked out (a clone without --recursive: its files
 *   are not there).
 * Returns the first difference found, or undefined when there is none; throws a UserError when git
 * cannot answer.
 */
async function treeDifference(top: string, infoAttributes: string): Promise<string | undefined> {
  const cannotTellWhy = (what: string, reason: string): UserError => new UserError(`cannot tell whether the git checkout ${top} is clean (${what}: ${reason}); a tree that might be dirty is not recorded as clean: fix the checkout (git status) and run again`);
  const cannotTell = (what: string, result: GitResult): UserError => cannotTellWhy(what, reasonOf(result));
  // Read-only and independent: at once, since a signing run's program waits for them.
  const [status, untracked, folders, ignored, index, config] = await Promise.all([
    // -z: names as they are (without it git quotes any that is not ASCII, \303\251 for é).
    git(top, [...NOTHING_CACHED, "status", "--porcelain", "-z", "--untracked-files=no", "--ignore-submodules=none"], undefined, "bytes"),
    // Untracked, by the commit's .gitignore files alone (not --exclude-standard, which adds this machine's rules).
    git(top, [...NOTHING_CACHED, "ls-files", "-z", "--others", "--directory", "--no-empty-directory", "--exclude-per-directory=.gitignore"], undefined, "bytes"),
    // The same with the folders that hold no untracked file: empty, or holding only ignored files or a .git (hiddenFromGit).
    git(top, [...NOTHING_CACHED, "ls-files", "-z", "--others", "--directory", "--exclude-per-directory=.gitignore"], undefined, "bytes"),
    git(top, [...NOTHING_CACHED, "ls-files", "-z", "--others", "--ignored", "--directory", "--exclude-per-directory=.gitignore"], undefined, "bytes"),
    // `<tag> <mode> <object> <stage>\t<path>`: the flags git is given, and the submodules (mode 160000).
    git(top, ["ls-files", "-z", "-v", "-s"]),
    // This machine's settings that convert files (machineSettings), in one process; --type=path
    // expands ~/ and %(prefix)/ as git does for core.attributesFile, and leaves other words alone.
    git(top, ["config", "-z", "--type=path", "--get-regexp", "^(core\\.(autocrlf|attributesfile)|attr\\.tree)$"]),
  ]);
  if (status.code !== 0) throw cannotTell("git status", status);
  // `XY name` each, NUL-ended (a rename's old name follows as an entry of its own).
  const changed = status.stdout.split("\0").find((entry) => entry.trim() !== "");
  if (changed !== undefined) return `changed: ${shown(changed.trim())}`;
  if (untracked.code !== 0) throw cannotTell("git ls-files --others", untracked);
  // A folder git could not open is only a warning to it (exit 0): what is in it is not known. A
  // listing git did not finish says that first.
  for (const [what, listing] of [["git ls-files --others", untracked], ["git ls-files --others --directory", folders], ["git ls-files --ignored", ignored]] as const) {
    const unopened = listing.stderr.split("\n").filter((line) => line.includes("could not open directory"));
    if (unopened.length > 0) throw listing.failure !== undefined || listing.code !== 0 ? cannotTell(what, listing) : cannotTellWhy(what, (unopened.at(-1) as string).trim());
  }
  const [stray] = untracked.stdout.split("\0").filter((entry) => entry !== "");
  if (stray !== undefined) return `untracked: ${shown(stray)}`;
  if (ignored.code !== 0) throw cannotTell("git ls-files --ignored", ignored);
  // An ignored .gitignore hides what it names; an ignored .gitattributes converts what it names.
  const ignoreFile = ignored.stdout.split("\0").find((entry) => /(^|\/)\.git(ignore|attributes)$/.test(entry));
  if (ignoreFile !== undefined) return `untracked: ${shown(ignoreFile)}`;
  if (index.code !== 0) throw cannotTell("git ls-files -v", index);
  const entries = index.stdout.split("\0").flatMap((entry) => {
    const match = /^([a-zA-Z]) (\d+) ([0-9a-f]+) \d\t(.+)$/s.exec(entry);
    return match === null ? [] : [{ tag: match[1] as string, mode: match[2] as string, object: match[3] as string, path: match[4] as string }];
  });
  // Read as UTF-8, as they go on to git and to node:fs (notUtf8).
  const undecodable = entries.find((entry) => notUtf8(entry.path));
  if (undecodable !== undefined) return `a tracked name that is not UTF-8, which Strata cannot check (rename it): ${undecodable.path}`;
  if (folders.code !== 0) throw cannotTell("git ls-files --others --directory", folders);
  const hidden = hiddenFromGit(top, folders.stdout.split("\0").filter((entry) => entry !== ""), ignored.stdout.split("\0").filter((entry) => entry !== ""), entries, cannotTellWhy);
  if (hidden !== undefined) return hidden;
  const settings = machineSettings(top, config, cannotTell);
  const converted = await machineConversion(top, entries.filter((entry) => entry.mode !== "160000").map((entry) => entry.path), { ...settings, infoAttributes }, cannotTell);
  if (converted !== undefined) return converted;
  const content = await contentDifference(top, entries.filter((entry) => entry.mode !== "160000"), cannotTell);
  if (content !== undefined) return content;
  for (const submodule of entries.filter((entry) => entry.mode === "160000")) {
    const difference = await submoduleDifference(top, submodule.path, cannotTell);
    if (difference !== undefined) return difference;
  }
  return undefined;
}

/**
 * Whether text read as UTF-8 (from git, or a path from node:fs) held bytes that are not UTF-8: each
 * such sequence reads as U+FFFD, so the name read may be another one's, spelled with U+FFFD in UTF-8
 * (a file, folder or ref beside it). Such a name is refused wherever it would be looked up again.
 */
const notUtf8 = (text: string): boolean => text.includes("\ufffd");

/** A name read as bytes (git(…, "bytes")) as the user reads it: UTF-8, where it is. */
const shown = (bytes: string): string => Buffer.from(bytes, "latin1").toString("utf8");

const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
/**
 * Text with its control characters (C0, DEL, C1) escaped (`\n`, `\u001b`): a file name in a
 * message cannot add lines to it or send codes to a terminal. Applied to whatever sourceState,
 * reviewedTip and isReviewedAt say (and readReviewedTip's checkout path).
 */
export const escaped = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (control) => SHORT_ESCAPES[control] ?? `\\u${control.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** The mode bits a tracked file must not have: git records only the executable bit, and a build's COPY keeps these (a setuid-root program in the image). */
const SET_ID_BITS = 0o6000;

/**
 * The folders `git ls-files --others --ignored --directory` lists alone, with nothing under them:
 * those ignored by their own name (node_modules/). A folder that only holds ignored files is listed
 * too, but with each of them after it (out/, out/a.o): git looks at no `.git` name, so such a folder
 * may hold one, and is walked.
 */
function ignoredAlone(ignoredListing: readonly string[]): Set<string> {
  const sorted = [...ignoredListing].sort();
  return new Set(sorted.filter((entry, at) => entry.endsWith("/") && !(sorted[at + 1] ?? "").startsWith(entry)));
}

/**
 * What a build context takes (Docker sends every file and folder not in .dockerignore, with its
 * mode) and git never shows, so neither git status nor the listings above see it:
 * - an empty folder (git tracks files): among `folders`, the untracked folders git lists when asked
 *   for empty ones too. Each holds no untracked file (treeDifference found none), so what it holds
 *   is empty folders, files the commit's .gitignore ignores (what a build makes: clean), or a
 *   `.git`; it is walked for the first and the last, but for the folders ignored by their own name
 *   (ignoredAlone: node_modules/), whose insides are a build's;
 * - a `.git` folder or file inside a folder that holds tracked files (git never lists the name;
 *   it is in the layer's fingerprint, so the build took it): each such folder is looked at;
 * - a tracked file with the setuid or setgid bit (SET_ID_BITS). Other mode bits, and a folder's,
 *   are left: a checkout made under umask 002, or in a setgid shared folder, is ordinary;
 * - a FIFO, socket or device node (git lists none of them, ignored or not; Docker's context takes
 *   FIFOs and devices), in the checkout's top, a folder that holds tracked files or one walked.
 * A submodule's own `.git` is where its entry is, not in a folder of its parent's: it is not one.
 * Synchronous: one lstat a tracked file and folder, about a tenth of the same awaited one by one.
 * What cannot be read is "cannot tell" (a UserError), never clean.
 */
function hiddenFromGit(top: string, folders: readonly string[], ignoredListing: readonly string[], entries: readonly { path: string; mode: string }[], cannotTellWhy: (what: string, reason: string) => UserError): string | undefined {
  const ignored = ignoredAlone(ignoredListing);
  const cannotRead = (what: string, error: unknown): UserError => cannotTellWhy(`reading ${what}`, (error as Error).message);
  // `folder` and the names in it are bytes (latin1, as git's listings here are read): see git().
  // `folder`: "" for the top, else ending in "/".
  const namesIn = (folder: string): { name: string; isDirectory: boolean; special: boolean }[] =>
    readdirSync(Buffer.concat([Buffer.from(`${top}/`), Buffer.from(folder, "latin1")]), { withFileTypes: true, encoding: "buffer" })
      .map((entry) => ({ name: entry.name.toString("latin1"), isDirectory: entry.isDirectory(), special: isSpecial(entry) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const specialFile = (relative: string): string => `a FIFO, socket or device node, which git does not show and a build context can take: ${shown(relative)}`;
  const walk = (folder: string): string | undefined => {
    let names: { name: string; isDirectory: boolean; special: boolean }[];
    try {
      names = namesIn(folder);
    } catch (error) {
      throw cannotRead(`the folder ${shown(folder)}`, error);
    }
    if (names.length === 0) return `an empty folder, which git does not show and a build context takes: ${shown(folder)}`;
    for (const entry of names) {
      const relative = `${folder}${entry.name}`;
      if (entry.name === ".git") return `a .git inside the checkout, which git does not show and a build context takes: ${shown(relative)}`;
      if (entry.special) return specialFile(relative);
      if (!entry.isDirectory || ignored.has(`${relative}/`)) continue;
      const inside = walk(`${relative}/`);
      if (inside !== undefined) return inside;
    }
    return undefined;
  };
  for (const folder of folders) {
    // Not a folder: an untracked file come since the listing above (a race), which is dirty too.
    if (!folder.endsWith("/")) return `untracked: ${shown(folder)}`;
    const found = walk(folder);
    if (found !== undefined) return found;
  }
  const lstatIfThere = (relative: string): Stats | undefined => {
    try {
      return lstatSync(path.join(top, relative));
    } catch (error) {
      // Nothing there: a tracked file gone is contentDifference's to report.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw cannotRead(relative, error);
    }
  };
  const trackedFolders = new Set<string>();
  for (const entry of entries) {
    for (let folder = path.posix.dirname(entry.path); folder !== "." && !trackedFolders.has(folder); folder = path.posix.dirname(folder)) trackedFolders.add(folder);
  }
  const gitInside = [...trackedFolders].sort().find((folder) => lstatIfThere(`${folder}/.git`) !== undefined);
  if (gitInside !== undefined) return `a .git inside the checkout, which git does not show and a build context takes: ${gitInside}/.git`;
  // The tracked names are read as UTF-8 (entries), the walk's as bytes (latin1): each folder turned into the walk's form.
  for (const folder of ["", ...[...trackedFolders].sort().map((name) => `${Buffer.from(name, "utf8").toString("latin1")}/`)]) {
    let names: { name: string; special: boolean }[];
    try {
      names = namesIn(folder);
    } catch (error) {
      // Gone, or no longer a folder: a tracked file gone is contentDifference's to report.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      throw cannotRead(`the folder ${shown(folder === "" ? "." : folder)}`, error);
    }
    const special = names.find((entry) => entry.special);
    if (special !== undefined) return specialFile(`${folder}${special.name}`);
  }
  const setId = entries.find((entry) => REGULAR_FILE.test(entry.mode) && ((lstatIfThere(entry.path)?.mode ?? 0) & SET_ID_BITS) !== 0);
  if (setId !== undefined) return `the setuid or setgid bit, which git does not record and a build's COPY keeps, on ${setId.path} (chmod ug-s)`;
  return undefined;
}

/** Neither a file, a folder nor a symlink: what git never lists. */
function isSpecial(entry: Dirent<Buffer>): boolean {
  return entry.isFIFO() || entry.isSocket() || entry.isCharacterDevice() || entry.isBlockDevice();
}

/** A git object id of `bytes` as a blob, in the repository's hash (by the length of its ids). */
function blobHash(object: string): Hash {
  return createHash(object.length === 64 ? "sha256" : "sha1");
}

/** The blob id of a tracked path's bytes as they are (a symlink's target text), or why it has none. `realTop`: the checkout's real path, resolved once by the caller. */
async function rawBlobId(top: string, realTop: () => Promise<string>, entry: { path: string; mode: string; object: string }): Promise<string | { gone: string }> {
  const file = path.join(top, entry.path);
  const hash = blobHash(entry.object);
  try {
    // lstat, readlink and readFile follow a symlink on the way: a folder swapped for one (which status does not look into for a flagged file) is not the commit's.
    const folder = path.dirname(entry.path);
    if (folder !== "." && (await realpath(path.join(top, folder))) !== path.join(await realTop(), folder)) return { gone: `a folder on its path is a symlink: ${entry.path}` };
    if (entry.mode === "120000") {
      const target = Buffer.from(await readlink(file));
      return hash.update(`blob ${target.length}\0`).update(target).digest("hex");
    }
    const found = await lstat(file);
    if (!found.isFile()) return { gone: `is no longer a file: ${entry.path}` };
    // Read whole when small (a catalog's files mostly are: a stream each costs more than the read), streamed when large.
    if (found.size <= WHOLE_READ_BYTES) {
      const bytes = await readFile(file);
      return hash.update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
    }
    hash.update(`blob ${found.size}\0`);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest("hex");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EINVAL") return { gone: `gone, or no longer ${entry.mode === "120000" ? "a symlink" : "a file"}: ${entry.path}` };
    throw error;
  }
}

/** The blob id of what checking out `object` at `path` writes (`git cat-file --filters`: the commit's own conversions, filters, line endings). */
function checkedOutBlobId(top: string, entry: { path: string; object: string }): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn("git", ["-C", top, ...UNCACHED, "cat-file", "--filters", `--path=${entry.path}`, entry.object], { stdio: ["ignore", "pipe", "ignore"], env: gitEnv() });
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), GIT_TIMEOUT_MS);
    child.on("error", () => resolve(undefined));
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return resolve(undefined);
      const hash = blobHash(entry.object).update(`blob ${size}\0`);
      for (const chunk of chunks) hash.update(chunk);
      resolve(hash.digest("hex"));
    });
  });
}

/**
 * Each entry's raw blob id: the regular files' from one `git hash-object --no-filters` (a C loop,
 * about a tenth of hashing them here), each path given as `./path` (a line that starts with a quote
 * would be unquoted); symlinks, paths with a newline or a carriage return (git's line reader drops
 * one at a line's end: `run.sh\r` would be hashed as `run.sh`), files git is told not to look at, and every
 * file when that command fails (a file gone) one by one here, which says which. hash-object follows
 * a symlink where a file was: git status sees that swap (a type change) unless the file is flagged
 * assume-unchanged or skip-worktree, so those are looked at here, where lstat finds it.
 */
async function rawBlobIds(top: string, entries: readonly { path: string; mode: string; object: string; tag: string }[]): Promise<{ entry: (typeof entries)[number]; raw: string | { gone: string } }[]> {
  const batch = entries.filter((entry) => REGULAR_FILE.test(entry.mode) && !/[\n\r]/.test(entry.path) && !FLAGGED.test(entry.tag));
  const hashes = batch.length === 0 ? undefined : await git(top, ["hash-object", "--no-filters", "--stdin-paths"], `${batch.map((entry) => `./${entry.path}`).join("\n")}\n`);
  const ids = new Map<(typeof entries)[number], string>();
  if (hashes?.code === 0) {
    const lines = hashes.stdout.split("\n");
    batch.forEach((entry, at) => {
      const id = lines[at];
      if (id !== undefined && id.length === entry.object.length) ids.set(entry, id);
    });
  }
  // The checkout's own real path, resolved once for every entry hashed here (not per entry).
  let resolvedTop: Promise<string> | undefined;
  const realTop = (): Promise<string> => (resolvedTop ??= realpath(top));
  return mapLimited(entries, HASH_CONCURRENCY, async (entry) => ({ entry, raw: ids.get(entry) ?? await rawBlobId(top, realTop, entry) }));
}

/**
 * `git check-attr -z --stdin` of `names` for `paths` (`gitArgs` before the command: a scratch
 * attributes file): one answer a path and name, `info` "unspecified", "unset", "set" or a value.
 */
async function checkAttributes(top: string, paths: readonly string[], names: readonly string[], cannotTell: (what: string, result: GitResult) => UserError, gitArgs: readonly string[] = []): Promise<{ path: string; name: string; info: string }[]> {
  const answer = await git(top, [...gitArgs, "check-attr", "-z", "--stdin", ...names], `${paths.join("\0")}\0`);
  if (answer.code !== 0) throw cannotTell("git check-attr", answer);
  // `<path> NUL <attribute> NUL <info> NUL`
  const fields = answer.stdout.split("\0");
  const answers: { path: string; name: string; info: string }[] = [];
  for (let at = 0; at + 2 < fields.length; at += 3) answers.push({ path: fields[at] as string, name: fields[at + 1] as string, info: fields[at + 2] as string });
  return answers;
}

/** Attributes by which a commit's own `.gitattributes` converts a file on checkout (gitattributes(5)). */
const CHECKOUT_CONVERSIONS = ["filter", "text", "eol", "crlf", "ident", "working-tree-encoding"];

/**
 * A tracked file whose bytes (or a symlink's target) are not what checking out the index writes.
 * git status trusts each file's stat data, which misses a same-size edit within the second of the
 * index's last refresh, or with its times put back, and skips files marked assume-unchanged or
 * skip-worktree: so every file's bytes are hashed here. A file whose bytes differ from its blob is
 * still the commit's when the commit's own attributes convert it on checkout (Git LFS, `eol=crlf`)
 * and `git cat-file --filters` writes exactly those bytes; this machine's own conversions were
 * refused before (machineConversion).
 */
async function contentDifference(top: string, entries: readonly { path: string; mode: string; object: string; tag: string }[], cannotTell: (what: string, result: GitResult) => UserError): Promise<string | undefined> {
  const hashed = await rawBlobIds(top, entries);
  const gone = hashed.find(({ raw }) => typeof raw !== "string");
  if (gone !== undefined) return (gone.raw as { gone: string }).gone;
  const differing = hashed.filter(({ entry, raw }) => raw !== entry.object);
  if (differing.length === 0) return undefined;
  const said = (entry: { path: string; tag: string }): string => (FLAGGED.test(entry.tag) ? `changed, though git is told not to look at it (assume-unchanged or skip-worktree): ${entry.path}` : `changed, though git status does not see it (a same-size edit its stat check missed): ${entry.path}`);
  const symlink = differing.find(({ entry }) => entry.mode === "120000");
  if (symlink !== undefined) return said(symlink.entry);
  const attributes = await checkAttributes(top, differing.map(({ entry }) => entry.path), CHECKOUT_CONVERSIONS, cannotTell);
  const converted = new Set(attributes.filter(({ info }) => info !== "unspecified" && info !== "unset").map((answer) => answer.path));
  for (const { entry, raw } of differing) {
    if (!converted.has(entry.path)) return said(entry);
    const expected = await checkedOutBlobId(top, entry);
    if (expected === undefined) return `cannot check ${entry.path} against its commit: git cat-file --filters failed (its filter driver is missing or failed), and its bytes are not its blob's`;
    if (raw !== expected) return `changed: ${entry.path} is not what checking out its commit writes (its bytes differ after the commit's own conversions)`;
  }
  return undefined;
}

/** The modes the index records for a regular file (100644, 100755, and 100664 from early git): not a symlink (120000) or a submodule (160000). */
const REGULAR_FILE = /^100[67][45][45]$/;
/** `git ls-files -v` tags of the entries git status skips: assume-unchanged (lowercase) and skip-worktree (S). */
const FLAGGED = /^[a-zS]$/;
/** Files hashed at once: reads of the checkout, bounded so a large tree does not open thousands of files. */
const HASH_CONCURRENCY = 16;
/** The largest file read whole to hash it; larger ones are streamed. */
const WHOLE_READ_BYTES = 4 << 20;

/**
 * Attributes that never change the bytes git compares (gitattributes(5)): anything else a line of
 * this machine's sets, a macro the commit defines included, may convert a file (filter, text, eol,
 * crlf, ident, working-tree-encoding) and counts. An unset (`-x`) or unspecified (`!x`) attribute
 * converts nothing: git then compares more strictly, not less.
 */
const HARMLESS = /^(binary|diff|merge|whitespace|export-ignore|export-subst|delta|conflict-marker-size|encoding|linguist-[a-z-]+)(=|$)/;
/** The attribute every tracked file gets from Strata's scratch attributes file: proof git read it. */
const PROBE_READ = "strata-read";
/** The attribute each of this machine's lines that may convert becomes, valued with the line's number. */
const PROBE_LINE = "strata-line";

/** This machine's settings (any config level) that convert files between the checkout and the index. */
interface MachineSettings {
  /** "true" or "input"; absent when false or not set. */
  readonly autocrlf?: string;
  /** Absolute: a relative core.attributesFile is git's from the checkout's top folder. */
  readonly attributesFile?: string;
  /** attr.tree (git 2.43 on): the tree git reads attributes from instead of the checkout's. */
  readonly attrTree?: string;
}

/** git's boolean words (git-config(1)): a key with no value is true, an empty value false; anything else is not a boolean. */
function gitBoolean(value: string | null): boolean | undefined {
  if (value === null) return true;
  const word = value.trim().toLowerCase();
  if (["true", "yes", "on", "1"].includes(word)) return true;
  if (["false", "no", "off", "0", ""].includes(word)) return false;
  return undefined;
}

/** `git config -z --type=path --get-regexp` of the settings, read as git reads them; exit 1 is "none set". The last value of a key wins, as in git. */
function machineSettings(top: string, config: GitResult, cannotTell: (what: string, result: GitResult) => UserError): MachineSettings {
  if (config.code !== 0 && config.code !== 1) throw cannotTell("git config --get-regexp", config);
  /** Key (lowercased by git) → its value; null for a key written with no value. */
  const values = new Map<string, string | null>();
  // `<key>\n<value>\0`; a key with no value has no newline.
  for (const entry of config.stdout.split("\0")) {
    if (entry === "") continue;
    const newline = entry.indexOf("\n");
    values.set(newline < 0 ? entry : entry.slice(0, newline), newline < 0 ? null : entry.slice(newline + 1));
  }
  const unreadable = (key: string, value: string | null): UserError => new UserError(`cannot tell whether the git checkout ${top} is clean: git config ${key} is ${value === null ? "set with no value" : `"${value}"`}, which Strata does not read as git would; fix that setting, and run again`);
  const settings: { -readonly [K in keyof MachineSettings]: MachineSettings[K] } = {};
  if (values.has("core.autocrlf")) {
    const autocrlf = values.get("core.autocrlf") as string | null;
    const asBoolean = gitBoolean(autocrlf);
    if (autocrlf !== null && autocrlf.trim().toLowerCase() === "input") settings.autocrlf = "input";
    else if (asBoolean === true) settings.autocrlf = "true";
    else if (asBoolean === undefined) throw unreadable("core.autocrlf", autocrlf);
  }
  const attributesFile = values.get("core.attributesfile");
  // notUtf8: Strata would open another file than git reads (or none).
  if (attributesFile === null || (attributesFile !== undefined && notUtf8(attributesFile))) throw unreadable("core.attributesFile", attributesFile);
  // Expanded by git (--type=path) when it began with ~/ or %(prefix)/; a relative one is the checkout's.
  if (attributesFile !== undefined && attributesFile !== "") settings.attributesFile = path.resolve(top, attributesFile);
  const attrTree = values.get("attr.tree");
  if (attrTree !== undefined) settings.attrTree = attrTree ?? "(no value)";
  return settings;
}

/**
 * A conversion this machine sets on a tracked file: `core.autocrlf`, or a line of its own
 * attributes files (`core.attributesFile` or its default `~/.config/git/attributes`,
 * `$GIT_DIR/info/attributes`; git reads no system-wide one here, gitEnv), which are no commit's; git status compares
 * what a filter, a line-ending or an encoding conversion makes of a file, so one set there can make
 * any change look like none. Only lines that reach a tracked file count (a global `*.ipynb
 * filter=nbstripout` in a checkout with no notebook does not): each such line is copied into a
 * scratch attributes file with its attributes replaced by one of Strata's, valued with its number,
 * and git's own pattern rules (`git check-attr`) say which files it reaches. Precedence is not
 * kept (a committed `-text` that cancels a line still counts it): an unsure answer is "dirty".
 * A conversion the commit's `.gitattributes` sets (Git LFS's filter) was reviewed with it and is
 * not one of these, though its command is this machine's config, as every filter driver's is.
 */
async function machineConversion(top: string, tracked: readonly string[], settings: MachineSettings & { readonly infoAttributes: string }, cannotTell: (what: string, result: GitResult) => UserError): Promise<string | undefined> {
  if (settings.autocrlf !== undefined) return `this machine's git config sets core.autocrlf=${settings.autocrlf}, so git status compares files with their line endings converted, not their bytes (git config core.autocrlf false, then check out again)`;
  // A git that reads it (2.43 on) takes every file's attributes from that tree, so another tree's conversions apply.
  if (settings.attrTree !== undefined) return `this machine's git config sets attr.tree=${settings.attrTree}, so git takes attributes (conversions) from that tree, not the commit's (git config --unset attr.tree)`;
  const home = process.env.XDG_CONFIG_HOME !== undefined && process.env.XDG_CONFIG_HOME !== "" ? process.env.XDG_CONFIG_HOME : path.join(homedir(), ".config");
  const global = settings.attributesFile ?? path.join(home, "git/attributes");
  // No system-wide file: git is told not to read one (gitEnv's GIT_ATTR_NOSYSTEM).
  const files = [global, settings.infoAttributes];
  /** The lines that may convert, by number (the value of PROBE_LINE). */
  const lines: { file: string; line: string; attributes: string[] }[] = [];
  const copied: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") continue;
      throw new UserError(`cannot tell whether the git checkout ${top} is clean: this machine's attributes file ${file} cannot be read (${(error as Error).message}), and a conversion set there would hide changes; fix its permissions, or remove it, and run again`);
    }
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const [pattern, ...attributes] = line.split(/\s+/) as [string, ...string[]];
      const converting = attributes.filter((attribute) => !attribute.startsWith("-") && !attribute.startsWith("!") && !HARMLESS.test(attribute));
      if (converting.length === 0) continue;
      // A macro of its own, or a quoted pattern (spaces in it), cannot be copied faithfully: counted as reaching every file.
      if (pattern.startsWith("[attr]") || pattern.startsWith("\"")) return `this machine's attributes (${file}) set ${converting.join(" ")} in a way Strata cannot place, and it may convert files: ${line}`;
      copied.push(`${pattern} ${PROBE_LINE}=${lines.length}`);
      lines.push({ file, line, attributes: converting });
    }
  }
  if (lines.length === 0 || tracked.length === 0) return undefined;
  // Absolute: git runs in the checkout's folder, where a relative TMPDIR would name another place.
  let scratch: string;
  try {
    scratch = await mkdtemp(path.join(path.resolve(tmpdir()), "strata-attributes-"));
  } catch (error) {
    throw new UserError(`cannot tell whether the git checkout ${top} is clean: a scratch folder for git check-attr cannot be made in ${path.resolve(tmpdir())} (${(error as Error).message}); fix TMPDIR, and run again`);
  }
  try {
    const attributesFile = path.join(scratch, "attributes");
    await writeFile(attributesFile, `* ${PROBE_READ}\n${copied.join("\n")}\n`);
    const answers = await checkAttributes(top, tracked, [PROBE_READ, PROBE_LINE], cannotTell, ["-c", `core.attributesFile=${attributesFile}`]);
    let read = 0;
    // "unspecified" where no line reached the path.
    for (const { path: file, name, info } of answers) {
      if (name === PROBE_READ) {
        if (info === "set") read++;
        continue;
      }
      if (name !== PROBE_LINE || info === "unspecified" || info === "unset") continue;
      const source = lines[Number(info)];
      return `this machine's attributes (${source?.file ?? "?"}) set ${source?.attributes.join(" ") ?? info} on ${file}, so git status compares what that makes of it, not its bytes: ${source?.line ?? ""}`;
    }
    // Each tracked file answered for: else git did not read Strata's file, and nothing above is known.
    if (read !== tracked.length) throw new UserError(`cannot tell whether the git checkout ${top} is clean: git check-attr answered for ${read} of ${tracked.length} tracked files from Strata's scratch attributes file (${attributesFile}), so which of this machine's attributes reach them is not known; check TMPDIR and git's config, and run again`);
    return undefined;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A submodule of `top` at `relative`: not checked out, or differing from its commit as treeDifference tells. */
async function submoduleDifference(top: string, relative: string, cannotTell: (what: string, result: GitResult) => UserError): Promise<string | undefined> {
  const dir = path.join(top, relative);
  let real: string;
  try {
    real = await realpath(dir);
  } catch {
    return `submodule not checked out: ${relative} (it is not there)`;
  }
  const own = await checkoutOf(dir);
  if ("failed" in own) throw cannotTell(`git rev-parse in submodule ${relative}`, own.failed);
  // Not checked out: the folder is empty, and git inside it answers for the checkout around it.
  if (own.top !== real) return `submodule not checked out: ${relative} (git submodule update --init --recursive)`;
  const inside = await treeDifference(real, own.infoAttributes);
  return inside === undefined ? undefined : `in submodule ${relative}: ${inside}`;
}

/** The top folder of the checkout `dir` is in, and where its own attributes file is (`$GIT_DIR/info/attributes`), in one git call. */
async function checkoutOf(dir: string): Promise<{ top: string; infoAttributes: string } | { failed: GitResult }> {
  const answer = await git(dir, ["rev-parse", "--show-toplevel", "--path-format=absolute", "--git-path", "info/attributes"]);
  // Exactly two absolute paths: a git without --path-format (before 2.31) echoes the option back, and a relative path would be read from this process's folder.
  const [top, infoAttributes, ...rest] = answer.stdout.replace(/\n$/, "").split("\n");
  if (answer.code !== 0 || top === undefined || !path.isAbsolute(top) || infoAttributes === undefined || !path.isAbsolute(infoAttributes) || rest.length > 0) {
    return { failed: answer.code === 0 ? { ...answer, code: undefined, failure: `git rev-parse answered "${answer.stdout.trim()}", not the checkout's top folder and its info/attributes (git 2.31 or later is needed)` } : answer };
  }
  // notUtf8: git would be asked about another folder.
  const undecodable = [top, infoAttributes].find(notUtf8);
  if (undecodable !== undefined) return { failed: { ...answer, code: undefined, failure: `${undecodable === top ? "the checkout's path" : "the path of its git folder's info/attributes"} ${undecodable} is not UTF-8, which Strata cannot name: move the checkout (or its git folder) to a folder whose path is` } };
  return { top, infoAttributes };
}

/**
 * The checkout at `dir`: the `origin` remote's URL (credentials removed), else the folder as a
 * file:// URL; HEAD's commit; clean when nothing differs from it (treeDifference), else the first
 * difference found, for the run to say (the provenance records only "dirty"). Throws a
 * UserError when `dir` is not in a git checkout or has no commit: an image's provenance cannot name
 * a source it does not know.
 */
export async function sourceState(dir: string): Promise<SourceState & { readonly difference?: string }> {
  try {
    const state = await readSourceState(dir);
    return state.difference === undefined ? state : { ...state, difference: escaped(state.difference) };
  } catch (error) {
    throw error instanceof UserError ? new UserError(escaped(error.message), { cause: error }) : error;
  }
}

/** sourceState, before what it says is escaped. */
async function readSourceState(dir: string): Promise<SourceState & { readonly difference?: string }> {
  const located = await checkoutOf(dir);
  if ("failed" in located) throw new UserError(`cannot tell which git checkout ${dir} is (${reasonOf(located.failed)}), so its images' provenance cannot name their source: build from a git checkout (git init && git commit), or run Strata inside one, as its owner or with the checkout in git's safe.directory`);
  const { top } = located;
  // core.worktree in the repository's config names the work tree git answers about: elsewhere, a
  // clean copy would be checked while the build reads this folder.
  const real = await realpath(dir).catch(() => path.resolve(dir));
  if (real !== top && !real.startsWith(`${top}${path.sep}`)) throw new UserError(`${dir} is not in the work tree git names for its repository (${top}: the repository's core.worktree points there), so git cannot say whether it is clean or which commit it is: build from the checkout's own work tree, or git config --unset core.worktree`);
  // At once: a signing run's program waits for them. The tree's answer is looked at after HEAD's, whose error comes first.
  const [head, tree, origin] = await Promise.all([
    git(dir, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]),
    treeDifference(top, located.infoAttributes).then((difference) => ({ difference }), (error: unknown) => ({ error })),
    git(dir, ["remote", "get-url", "origin"]),
  ]);
  const commit = head.stdout.trim();
  if (head.code !== 0 || !FULL_COMMIT.test(commit)) {
    throw new UserError(`the git checkout ${top} has no commit at HEAD (${head.code === 1 ? "no commit yet" : reasonOf(head)}): commit the catalog before building, so provenance can name the commit`);
  }
  if ("error" in tree) throw tree.error;
  const { difference } = tree;
  // Exit 2: there is no remote called origin; anything else went wrong and is not taken for "none".
  if (origin.code !== 0 && origin.code !== 2) throw new UserError(`cannot read the origin remote of ${top} (${reasonOf(origin)}): fix the checkout's git config`);
  const repository = origin.code === 0 && origin.stdout.trim() !== "" ? publishableRemote(origin.stdout) : `file://${top}`;
  return { repository, commit, clean: difference === undefined, ...(difference === undefined ? {} : { difference }) };
}

export type { ReviewAnswer } from "../core/trust-verdict.js";

/** The trust policy's reviewed ref as git names it, read once for a whole verification: every image is judged against the same commit. */
export interface ReviewedTip {
  /** As configured (`origin/main`). */
  readonly ref: string;
  /** As git names it (`refs/remotes/origin/main`). */
  readonly fullName: string;
  /** The commit it names. */
  readonly commit: string;
}

/** Why git cannot say which commit the reviewed ref names: the policy's ref, or the checkout git was asked in. */
export interface ReviewedTipUnknown {
  readonly kind: "could not tell";
  readonly detail: string;
  readonly about: "ref" | "checkout";
}

// Ambiguous names refused whatever the config says.
const UNAMBIGUOUS = ["-c", "core.warnAmbiguousRefs=true"];

/**
 * Which commit the reviewed ref names, or why git cannot say: a problem of the policy or the
 * checkout, the same for every image, so the gate and `strata verify` say it once.
 *
 * What git is asked cannot be steered by this checkout's or machine's settings: the ref must be one
 * name git expands to a single remote-tracking ref or tag (reviewedRefProblem), with
 * core.warnAmbiguousRefs on (off, a tag `origin/main` fetched from anyone who can push tags would
 * win over refs/remotes/origin/main).
 */
export async function reviewedTip(dir: string, reviewedRef: string): Promise<ReviewedTip | ReviewedTipUnknown> {
  const tip = await lookUpReviewedTip(dir, reviewedRef);
  return "kind" in tip ? { ...tip, detail: escaped(tip.detail) } : tip;
}

/** reviewedTip, before what it says is escaped (the checkout's path, git's words). */
async function lookUpReviewedTip(dir: string, reviewedRef: string): Promise<ReviewedTip | ReviewedTipUnknown> {
  // Checked before (trust-policy.ts); checked again so it cannot reach git as an option.
  if (reviewedRef.startsWith("-") || reviewedRef.trim() === "") return { kind: "could not tell", detail: `"${reviewedRef}" is not a git ref`, about: "ref" };
  const known = await git(dir, [...UNAMBIGUOUS, "rev-parse", "--verify", "--quiet", `${reviewedRef}^{commit}`]);
  // Exit 1 is rev-parse's "no such ref"; anything else (no repository, git missing) is git unable to answer.
  // git's own words where it has some (a ref naming a tree, a broken ref).
  if (known.code === 1) return { kind: "could not tell", detail: `the reviewed ref ${reviewedRef} is not known to the checkout at ${dir} as a commit (${known.stderr.trim() === "" ? "no such ref" : reasonOf(known)}): git fetch it, or correct strata:trust.reviewedRef`, about: "ref" };
  if (known.code !== 0) return { kind: "could not tell", detail: `git could not look up ${reviewedRef} in ${dir} (${reasonOf(known)})`, about: "checkout" };
  const named = await git(dir, [...UNAMBIGUOUS, "rev-parse", "--symbolic-full-name", reviewedRef]);
  if (named.code !== 0) return { kind: "could not tell", detail: `git could not say which ref ${reviewedRef} is (${reasonOf(named)})`, about: "checkout" };
  const fullName = named.stdout.trim();
  // notUtf8: the name looked up below may be another ref's, one anyone could push.
  if (notUtf8(fullName)) return { kind: "could not tell", detail: `git names the reviewed ref ${reviewedRef} ${fullName}, which is not UTF-8, so Strata cannot ask git about it by name: name a ref whose name is UTF-8`, about: "ref" };
  // A revision expression (main~0) or a name of two refs (a tag and a branch) has no single name.
  if (fullName === "" || fullName.includes("\n")) return { kind: "could not tell", detail: `git names no single remote-tracking ref or tag for the reviewed ref ${reviewedRef} (a revision expression, or a name of two refs, such as a tag and a branch): name the ref itself, for example origin/main`, about: "ref" };
  const wrongKind = reviewedRefProblem(fullName);
  if (wrongKind !== undefined) return { kind: "could not tell", detail: `the reviewed ref ${reviewedRef}: ${wrongKind}`, about: "ref" };
  const tip = await git(dir, [...UNAMBIGUOUS, "rev-parse", "--verify", "--quiet", `${fullName}^{commit}`]);
  const tipId = tip.stdout.trim();
  if (tip.code !== 0 || !FULL_COMMIT.test(tipId)) return { kind: "could not tell", detail: `git could not say which commit ${fullName} is (${tip.code === 0 ? `it answered "${tipId}"` : reasonOf(tip)})`, about: "checkout" };
  return { ref: reviewedRef, fullName, commit: tipId };
}

/**
 * Whether `commit` is reviewed: an ancestor of (or equal to) the reviewed ref's commit (reviewedTip),
 * by `git merge-base --is-ancestor`. Exit 1 is its "no"; any other failure (an unknown commit, a
 * shallow clone without the history, git missing) is "could not tell", which the gate refuses.
 *
 * The ancestry is asked of the tip's commit id, not its name; replace refs, grafts and the caches
 * git reads commits from unchecked are not read (gitEnv, UNCACHED). What it trusts is the
 * checkout's .git itself, its refs, objects, packs and their indexes, and the alternates it names:
 * whoever can write those can move refs/remotes/origin/main too.
 */
export async function isReviewedAt(dir: string, commit: string, tip: ReviewedTip): Promise<ReviewAnswer> {
  const answer = await askReviewed(dir, commit, tip);
  return answer.kind === "reviewed" ? answer : { ...answer, detail: escaped(answer.detail) };
}

/** isReviewedAt, before what it says is escaped. */
async function askReviewed(dir: string, commit: string, tip: ReviewedTip): Promise<ReviewAnswer> {
  // Checked before (provenance.ts, reviewedTip); checked again so neither can reach git as an option.
  if (!FULL_COMMIT.test(commit)) return { kind: "could not tell", detail: `"${commit}" is not a full commit id` };
  if (!FULL_COMMIT.test(tip.commit)) return { kind: "could not tell", detail: `the reviewed ref ${tip.ref} names "${tip.commit}", not a full commit id` };
  const present = await git(dir, ["cat-file", "-e", `${commit}^{commit}`]);
  if (present.code !== 0) return { kind: "could not tell", detail: `commit ${commit} is not in the checkout at ${dir} (${present.failure ?? "unknown object"}): git fetch the branch that has it (a shallow clone lacks history)` };
  const answer = await git(dir, [...UNAMBIGUOUS, "merge-base", "--is-ancestor", commit, tip.commit]);
  if (answer.code === 0) return { kind: "reviewed" };
  if (answer.code === 1) {
    // In a shallow clone, git's "no" may only mean the history between the two was not fetched.
    const shallow = await git(dir, ["rev-parse", "--is-shallow-repository"]);
    if (shallow.code !== 0) return { kind: "could not tell", detail: `git could not say whether the checkout at ${dir} is a shallow clone (${reasonOf(shallow)}), which would make its "not in ${tip.ref}" unsure` };
    if (shallow.stdout.trim() === "true") return { kind: "could not tell", detail: `the checkout at ${dir} is a shallow clone: git finds commit ${commit} outside ${tip.ref}, but the history that would link them may not be fetched (git fetch --unshallow)` };
    return { kind: "not reviewed", detail: `commit ${commit} is not in ${tip.ref}` };
  }
  return { kind: "could not tell", detail: `git merge-base --is-ancestor ${commit} ${tip.commit} (${tip.fullName}): ${reasonOf(answer)}` };
}

/** reviewedTip, then isReviewedAt: one commit asked about, as the tests ask. */
export async function isReviewed(dir: string, commit: string, reviewedRef: string): Promise<ReviewAnswer> {
  const tip = await reviewedTip(dir, reviewedRef);
  return "kind" in tip ? { kind: tip.kind, detail: tip.detail } : isReviewedAt(dir, commit, tip);
}
