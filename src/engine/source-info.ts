/**
 * What git says about the checkout a stack builds from (issue 29): the repository, HEAD's commit and
 * whether the tree is clean, for the provenance of every image; and whether a commit is reviewed
 * (an ancestor of the trust policy's reviewedRef), for the promotion gate.
 *
 * Fails closed: what git cannot answer is an error or "could not tell", never "clean" or "reviewed".
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { UserError } from "../core/problems.js";
import { type SourceState } from "../core/provenance.js";
import { type ReviewAnswer } from "../core/trust-verdict.js";

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

function git(dir: string, args: readonly string[], input?: string): Promise<GitResult> {
  return new Promise((resolve) => {
    // LC_ALL=C: messages the user reads are git's own, in one language; GIT_OPTIONAL_LOCKS=0: a
    // status must not take the index lock a concurrent git command holds.
    const child = execFile("git", ["-C", dir, ...args], { timeout: GIT_TIMEOUT_MS, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: "C", GIT_OPTIONAL_LOCKS: "0" } }, (error, stdout, stderr) => {
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

/** The last line git wrote to stderr, or why it did not run. */
function reasonOf(result: GitResult): string {
  return result.failure ?? (result.stderr.trim().split("\n").pop() || `exit ${String(result.code)}`);
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
 * (a same-size edit with its mtime put back would pass).
 */
const NOTHING_CACHED = ["-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false", "-c", "core.trustctime=true", "-c", "core.checkStat=default"];

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
 * - files marked assume-unchanged or skip-worktree whose bytes differ from the index, or are gone
 *   (so a sparse checkout is dirty: files of the commit are not there);
 * - a conversion (a filter, line endings, an encoding) this machine sets on a tracked file, by
 *   `core.autocrlf` or its own attributes (machineConversion): git compares what it makes of a
 *   file, not its bytes;
 * - each submodule the same way, and one not checked out (a clone without --recursive: its files
 *   are not there).
 * Returns the first difference found, or undefined when there is none; throws a UserError when git
 * cannot answer.
 */
async function treeDifference(top: string, infoAttributes: string): Promise<string | undefined> {
  const cannotTell = (what: string, result: GitResult): UserError => new UserError(`cannot tell whether the git checkout ${top} is clean (${what}: ${reasonOf(result)}); a tree that might be dirty is not recorded as clean: fix the checkout (git status) and run again`);
  // Read-only and independent: at once, since a signing run's program waits for them.
  const [status, untracked, ignored, index, config] = await Promise.all([
    git(top, [...NOTHING_CACHED, "status", "--porcelain", "--untracked-files=no", "--ignore-submodules=none"]),
    // Untracked, by the commit's .gitignore files alone (not --exclude-standard, which adds this machine's rules).
    // An empty folder is not listed (git status shows none either): it holds nothing a build takes.
    git(top, [...NOTHING_CACHED, "ls-files", "-z", "--others", "--directory", "--no-empty-directory", "--exclude-per-directory=.gitignore"]),
    git(top, [...NOTHING_CACHED, "ls-files", "-z", "--others", "--ignored", "--directory", "--exclude-per-directory=.gitignore"]),
    // `<tag> <mode> <object> <stage>\t<path>`: the flags git is given, and the submodules (mode 160000).
    git(top, ["ls-files", "-z", "-v", "-s"]),
    // The settings that decide how closely git looks (machineSettings), in one process.
    git(top, ["config", "-z", "--get-regexp", "^core\\.(trustctime|checkstat|autocrlf|attributesfile)$"]),
  ]);
  if (status.code !== 0) throw cannotTell("git status", status);
  const changed = status.stdout.split("\n").find((line) => line.trim() !== "");
  if (changed !== undefined) return `changed: ${changed.trim()}`;
  if (untracked.code !== 0) throw cannotTell("git ls-files --others", untracked);
  const [stray] = untracked.stdout.split("\0").filter((entry) => entry !== "");
  if (stray !== undefined) return `untracked: ${stray}`;
  if (ignored.code !== 0) throw cannotTell("git ls-files --ignored", ignored);
  // An ignored .gitignore hides what it names; an ignored .gitattributes converts what it names.
  const ignoreFile = ignored.stdout.split("\0").find((entry) => /(^|\/)\.git(ignore|attributes)$/.test(entry));
  if (ignoreFile !== undefined) return `untracked: ${ignoreFile}`;
  if (index.code !== 0) throw cannotTell("git ls-files -v", index);
  const entries = index.stdout.split("\0").flatMap((entry) => {
    const match = /^([a-zA-Z]) (\d+) ([0-9a-f]+) \d\t(.+)$/s.exec(entry);
    return match === null ? [] : [{ tag: match[1] as string, mode: match[2] as string, object: match[3] as string, path: match[4] as string }];
  });
  const settings = machineSettings(top, config, cannotTell);
  const converted = await machineConversion(top, entries.filter((entry) => entry.mode !== "160000").map((entry) => entry.path), { ...settings, infoAttributes }, cannotTell);
  if (converted !== undefined) return converted;
  // A stat check this machine tells to skip a file's ctime (core.trustctime=false) or most of its
  // fields (core.checkStat=minimal) lets any git status record a same-size edit with its mtime put
  // back as unchanged in the index, which no later status sees: then every file's bytes are read.
  const statSkips = settings.trustctime === false || settings.checkStat === "minimal";
  const flagged = await contentDifference(top, entries.filter((entry) => entry.mode !== "160000" && (/^[a-zS]$/.test(entry.tag) || (statSkips && /^100[67][45][45]$/.test(entry.mode)))));
  if (flagged !== undefined) return flagged;
  for (const submodule of entries.filter((entry) => entry.mode === "160000")) {
    const difference = await submoduleDifference(top, submodule.path, cannotTell);
    if (difference !== undefined) return difference;
  }
  return undefined;
}

/**
 * A file whose bytes are not the index's, hashed as `git add` would: those marked assume-unchanged
 * or skip-worktree (`git ls-files -v`: a lowercase tag, or S), and every file when git's stat check
 * is told to look at less.
 */
async function contentDifference(top: string, files: readonly { path: string; object: string; tag: string }[]): Promise<string | undefined> {
  if (files.length === 0) return undefined;
  const hashes = await git(top, ["hash-object", "--stdin-paths"], `${files.map((file) => file.path).join("\n")}\n`);
  // A file that is gone (or that git cannot hash) fails the whole command: dirty, since the tree is not the commit.
  if (hashes.code !== 0) return `a file git does not look at closely is not what the index holds (${reasonOf(hashes)})`;
  const lines = hashes.stdout.split("\n");
  const differing = files.find((file, index) => lines[index] !== file.object);
  if (differing === undefined) return undefined;
  return /^[a-zS]$/.test(differing.tag)
    ? `changed, though git is told not to look at it (assume-unchanged or skip-worktree): ${differing.path}`
    : `changed, though this machine's git stat check (core.trustctime, core.checkStat) would not see it: ${differing.path}`;
}

/**
 * Attributes that never change the bytes git compares (gitattributes(5)): anything else a line of
 * this machine's sets, a macro the commit defines included, may convert a file (filter, text, eol,
 * crlf, ident, working-tree-encoding) and counts. An unset (`-x`) or unspecified (`!x`) attribute
 * converts nothing: git then compares more strictly, not less.
 */
const HARMLESS = /^(binary|diff|merge|whitespace|export-ignore|export-subst|delta|conflict-marker-size|encoding|linguist-[a-z-]+)(=|$)/;
/** Debian's git reads this machine's system-wide attributes here (unless GIT_ATTR_NOSYSTEM is set). */
const SYSTEM_ATTRIBUTES = "/etc/gitattributes";
/** The attribute every tracked file gets from Strata's scratch attributes file: proof git read it. */
const PROBE_READ = "strata-read";
/** The attribute each of this machine's lines that may convert becomes, valued with the line's number. */
const PROBE_LINE = "strata-line";

/** This machine's settings (any config level) that decide how closely git looks at a checkout. */
interface MachineSettings {
  readonly trustctime?: boolean;
  readonly checkStat?: string;
  /** "true", "input", or absent/false. */
  readonly autocrlf?: string;
  /** Absolute: a relative core.attributesFile is git's from the checkout's top folder, `~/` from the home folder. */
  readonly attributesFile?: string;
}

/** git's boolean words (git-config(1)); anything else is not a boolean. */
function gitBoolean(value: string): boolean | undefined {
  const word = value.trim().toLowerCase();
  if (["true", "yes", "on", "1", ""].includes(word)) return true;
  if (["false", "no", "off", "0"].includes(word)) return false;
  return undefined;
}

/** `git config -z --get-regexp` of the settings, read as git reads them; exit 1 is "none set". The last value of a key wins, as in git. */
function machineSettings(top: string, config: GitResult, cannotTell: (what: string, result: GitResult) => UserError): MachineSettings {
  if (config.code !== 0 && config.code !== 1) throw cannotTell("git config --get-regexp", config);
  const values = new Map<string, string>();
  // `<key>\n<value>\0`, the key lowercased; a key with no value has no newline.
  for (const entry of config.stdout.split("\0")) {
    if (entry === "") continue;
    const newline = entry.indexOf("\n");
    values.set(newline < 0 ? entry : entry.slice(0, newline), newline < 0 ? "" : entry.slice(newline + 1));
  }
  const unreadable = (key: string, value: string): UserError => new UserError(`cannot tell whether the git checkout ${top} is clean: git config ${key} is "${value}", which Strata does not read as git would; fix that setting, and run again`);
  const settings: { -readonly [K in keyof MachineSettings]: MachineSettings[K] } = {};
  const trustctime = values.get("core.trustctime");
  if (trustctime !== undefined) {
    settings.trustctime = gitBoolean(trustctime);
    if (settings.trustctime === undefined) throw unreadable("core.trustctime", trustctime);
  }
  const checkStat = values.get("core.checkstat");
  if (checkStat !== undefined) settings.checkStat = checkStat.trim().toLowerCase();
  const autocrlf = values.get("core.autocrlf");
  if (autocrlf !== undefined) {
    const word = autocrlf.trim().toLowerCase();
    const asBoolean = gitBoolean(word);
    if (word === "input") settings.autocrlf = "input";
    else if (asBoolean === true) settings.autocrlf = "true";
    else if (asBoolean === undefined) throw unreadable("core.autocrlf", autocrlf);
  }
  const attributesFile = values.get("core.attributesfile");
  if (attributesFile !== undefined && attributesFile !== "") {
    if (attributesFile.startsWith("~") && !attributesFile.startsWith("~/")) throw unreadable("core.attributesFile", attributesFile);
    settings.attributesFile = attributesFile.startsWith("~/") ? path.join(homedir(), attributesFile.slice(2)) : path.resolve(top, attributesFile);
  }
  return settings;
}

/**
 * A conversion this machine sets on a tracked file: `core.autocrlf`, or a line of its own
 * attributes files (`/etc/gitattributes`, `core.attributesFile` or its default
 * `~/.config/git/attributes`, `$GIT_DIR/info/attributes`), which are no commit's; git status compares
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
  const home = process.env.XDG_CONFIG_HOME !== undefined && process.env.XDG_CONFIG_HOME !== "" ? process.env.XDG_CONFIG_HOME : path.join(homedir(), ".config");
  const global = settings.attributesFile ?? path.join(home, "git/attributes");
  const files = [...(process.env.GIT_ATTR_NOSYSTEM === undefined || process.env.GIT_ATTR_NOSYSTEM === "" ? [SYSTEM_ATTRIBUTES] : []), global, settings.infoAttributes];
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
  const scratch = await mkdtemp(path.join(path.resolve(tmpdir()), "strata-attributes-"));
  try {
    const attributesFile = path.join(scratch, "attributes");
    await writeFile(attributesFile, `* ${PROBE_READ}\n${copied.join("\n")}\n`);
    const answer = await git(top, ["-c", `core.attributesFile=${attributesFile}`, "check-attr", "-z", "--stdin", PROBE_READ, PROBE_LINE], `${tracked.join("\0")}\0`);
    if (answer.code !== 0) throw cannotTell("git check-attr", answer);
    // `<path> NUL <attribute> NUL <info> NUL`, info "unspecified" where no line reached the path.
    const fields = answer.stdout.split("\0");
    let read = 0;
    for (let at = 0; at + 2 < fields.length; at += 3) {
      const [file, name, info] = [fields[at] as string, fields[at + 1] as string, fields[at + 2] as string];
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
  const [top, infoAttributes] = answer.stdout.split("\n");
  if (answer.code !== 0 || top === undefined || top === "" || infoAttributes === undefined || infoAttributes === "") return { failed: answer };
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
  const located = await checkoutOf(dir);
  if ("failed" in located) throw new UserError(`cannot tell which git checkout ${dir} is (${reasonOf(located.failed)}), so its images' provenance cannot name their source: build from a git checkout (git init && git commit), or run Strata inside one`);
  const { top } = located;
  // At once: a signing run's program waits for them. The tree's answer is looked at after HEAD's, whose error comes first.
  const [head, tree, origin] = await Promise.all([
    git(dir, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]),
    treeDifference(top, located.infoAttributes).then((difference) => ({ difference }), (error: unknown) => ({ error })),
    git(dir, ["remote", "get-url", "origin"]),
  ]);
  const commit = head.stdout.trim();
  if (head.code !== 0 || !/^([a-f0-9]{40}|[a-f0-9]{64})$/.test(commit)) {
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

/**
 * Whether `commit` is reviewed: an ancestor of (or equal to) `reviewedRef`, by
 * `git merge-base --is-ancestor`. Exit 1 is its "no"; any other failure (an unknown ref or commit, a
 * shallow clone without the history, git missing) is "could not tell", which the gate refuses.
 */
export async function isReviewed(dir: string, commit: string, reviewedRef: string): Promise<ReviewAnswer> {
  // Both were checked before (provenance.ts, trust-policy.ts); checked again so neither can reach git as an option.
  if (!/^([a-f0-9]{40}|[a-f0-9]{64})$/.test(commit)) return { kind: "could not tell", detail: `"${commit}" is not a full commit id` };
  if (reviewedRef.startsWith("-") || reviewedRef.trim() === "") return { kind: "could not tell", detail: `"${reviewedRef}" is not a git ref` };
  const ref = await git(dir, ["rev-parse", "--verify", "--quiet", `${reviewedRef}^{commit}`]);
  if (ref.code !== 0) return { kind: "could not tell", detail: `the reviewed ref ${reviewedRef} is not known to the checkout at ${dir} (${ref.code === 1 ? "no such ref" : reasonOf(ref)}): git fetch it, or correct strata:trust.reviewedRef` };
  // The branch the checkout is on moves with every local commit (a build, an unreviewed change):
  // as the reviewed ref it would call whatever was just committed here reviewed.
  const [named, checkedOut] = await Promise.all([git(dir, ["rev-parse", "--symbolic-full-name", reviewedRef]), git(dir, ["symbolic-ref", "-q", "HEAD"])]);
  if (named.code !== 0 || checkedOut.code === undefined || checkedOut.code > 1) return { kind: "could not tell", detail: `git could not say which branch ${reviewedRef} is or which one the checkout at ${dir} is on (${reasonOf(named.code !== 0 ? named : checkedOut)})` };
  // A ref git cannot name as one branch or tag (main~0, a name both a tag and a branch) cannot be
  // told apart from the checked-out branch: could not tell.
  if (named.stdout.trim() === "") return { kind: "could not tell", detail: `git names no single branch or tag for the reviewed ref ${reviewedRef} (a revision expression, or a name both a branch and a tag): name the branch or tag itself, for example origin/main` };
  if (checkedOut.code === 0 && named.stdout.trim() === checkedOut.stdout.trim()) {
    return { kind: "could not tell", detail: `the reviewed ref ${reviewedRef} is the branch checked out at ${dir}: a commit made there would count as reviewed` };
  }
  const known = await git(dir, ["cat-file", "-e", `${commit}^{commit}`]);
  if (known.code !== 0) return { kind: "could not tell", detail: `commit ${commit} is not in the checkout at ${dir} (${known.failure ?? "unknown object"}): git fetch the branch that has it (a shallow clone lacks history)` };
  const answer = await git(dir, ["merge-base", "--is-ancestor", commit, reviewedRef]);
  if (answer.code === 0) return { kind: "reviewed" };
  if (answer.code === 1) {
    // In a shallow clone, git's "no" may only mean the history between the two was not fetched.
    const shallow = await git(dir, ["rev-parse", "--is-shallow-repository"]);
    if (shallow.code !== 0) return { kind: "could not tell", detail: `git could not say whether the checkout at ${dir} is a shallow clone (${reasonOf(shallow)}), which would make its "not in ${reviewedRef}" unsure` };
    if (shallow.stdout.trim() === "true") return { kind: "could not tell", detail: `the checkout at ${dir} is a shallow clone: git finds commit ${commit} outside ${reviewedRef}, but the history that would link them may not be fetched (git fetch --unshallow)` };
    return { kind: "not reviewed", detail: `commit ${commit} is not in ${reviewedRef}` };
  }
  return { kind: "could not tell", detail: `git merge-base --is-ancestor ${commit} ${reviewedRef}: ${reasonOf(answer)}` };
}
