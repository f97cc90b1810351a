import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InputError, UserError } from "../../src/core/problems.js";
import { readReviewedTip } from "../../src/engine/image-verify.js";
import { isReviewed, isReviewedAt, publishableRemote, reviewedTip, sourceState } from "../../src/engine/source-info.js";

const root = mkdtempSync(path.join(tmpdir(), "strata-source-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org", GIT_CONFIG_NOSYSTEM: "1", HOME: root };
const git = (dir: string, ...args: string[]): string => execFileSync("git", ["-C", dir, ...args], { env, encoding: "utf8" }).trim();

/** A repository with a reviewed `main` (two commits) and an unreviewed `topic` commit on top. */
function makeRepo(name: string): { dir: string; first: string; reviewed: string; topic: string } {
  const dir = path.join(root, name);
  execFileSync("git", ["init", "-q", "-b", "main", dir], { env });
  writeFileSync(path.join(dir, "a.txt"), "1\n");
  git(dir, "add", "a.txt");
  git(dir, "commit", "-q", "-m", "one");
  const first = git(dir, "rev-parse", "HEAD");
  writeFileSync(path.join(dir, "a.txt"), "2\n");
  git(dir, "commit", "-q", "-am", "two");
  const reviewed = git(dir, "rev-parse", "HEAD");
  git(dir, "checkout", "-q", "-b", "topic");
  writeFileSync(path.join(dir, "a.txt"), "3\n");
  git(dir, "commit", "-q", "-am", "three");
  return { dir, first, reviewed, topic: git(dir, "rev-parse", "HEAD") };
}

/** `name` written with `text` in `dir`, added and committed. */
function commitFile(dir: string, name: string, text: string, message: string): void {
  writeFileSync(path.join(dir, name), text);
  git(dir, "add", name);
  git(dir, "commit", "-q", "-m", message);
}

/** A repository (makeRepo) with another one added as a submodule at `at`, committed. */
function withSubmodule(name: string, libraryName: string, at: string): ReturnType<typeof makeRepo> {
  const library = makeRepo(libraryName);
  const repo = makeRepo(name);
  execFileSync("git", ["-C", repo.dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", library.dir, at], { env });
  git(repo.dir, "commit", "-q", "-m", "submodule");
  return repo;
}

/**
 * A same-size edit of `file` that git status does not see: an old mtime recorded by a refresh, then
 * the edit with that mtime put back, in the same second as the refresh (git compares times to the
 * second). Tried again when a second boundary fell in between; false when it never worked.
 */
function sameSizeEditGitMisses(dir: string, file: string): boolean {
  const where = path.join(dir, file);
  const original = readFileSync(where);
  for (let attempt = 0; attempt < 5; attempt++) {
    writeFileSync(where, original);
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(where, past, past);
    git(dir, "update-index", "--refresh");
    const before = statSync(where);
    writeFileSync(where, Buffer.from(original.toString("utf8").replace(/./, (first) => (first === "9" ? "8" : "9"))));
    utimesSync(where, before.atime, before.mtime);
    const seen = execFileSync("git", ["-C", dir, "status", "--porcelain"], { env: { ...env, GIT_OPTIONAL_LOCKS: "0" }, encoding: "utf8" });
    if (seen === "") return true;
  }
  return false;
}

/**
 * The repository's commit-graph file and its chunks (gitformat-commit-graph(5)): OIDL lists the
 * commits sorted, CDAT holds each one's tree id (20 bytes), its two parents' positions (4 bytes
 * each) and its generation and date (8).
 */
function commitGraphChunks(dir: string): { file: string; graph: Buffer; oidl: number; cdat: number; count: number } {
  const file = path.join(dir, ".git/objects/info/commit-graph");
  const graph = readFileSync(file);
  const chunks = new Map<string, number>();
  for (let at = 8; ; at += 12) {
    const id = graph.toString("latin1", at, at + 4);
    if (id === "\0\0\0\0") break;
    chunks.set(id, Number(graph.readBigUInt64BE(at + 4)));
  }
  const oidl = chunks.get("OIDL") as number;
  const cdat = chunks.get("CDAT") as number;
  return { file, graph, oidl, cdat, count: (cdat - oidl) / 20 };
}
function commitGraphPosition(dir: string, commit: string): number {
  const { graph, oidl, count } = commitGraphChunks(dir);
  return Array.from({ length: count }, (_, at) => graph.toString("hex", oidl + 20 * at, oidl + 20 * at + 20)).indexOf(commit);
}
/** Edits `commit`'s CDAT entry (`edit` gets its 36 bytes) and writes the file back. */
function patchCommitGraph(dir: string, commit: string, edit: (entry: Buffer) => void): void {
  const { file, graph, cdat } = commitGraphChunks(dir);
  const at = cdat + 36 * commitGraphPosition(dir, commit);
  edit(graph.subarray(at, at + 36));
  writeFileSync(file, graph);
}

describe("source state", () => {
  const repo = makeRepo("repo");

  it("names the folder when there is no origin, HEAD's commit, and a clean tree", async () => {
    expect(await sourceState(repo.dir)).toEqual({ repository: `file://${repo.dir}`, commit: repo.topic, clean: true });
  });

  it("compares the checkout with HEAD's own tree, not the one git replace puts in its place", async () => {
    const replaced = makeRepo("replaced-head");
    // a.txt changed and staged, and HEAD replaced by a commit whose tree holds that change: git status, as configured, calls it clean.
    writeFileSync(path.join(replaced.dir, "a.txt"), "not committed\n");
    git(replaced.dir, "add", "a.txt");
    const forged = git(replaced.dir, "commit-tree", git(replaced.dir, "write-tree"), "-p", replaced.reviewed, "-m", "forged");
    git(replaced.dir, "replace", replaced.topic, forged);
    expect(git(replaced.dir, "status", "--porcelain")).toBe("");
    expect(await sourceState(replaced.dir)).toMatchObject({ commit: replaced.topic, clean: false });
  });

  it("compares the checkout with HEAD's own tree, not the one an edited commit-graph file gives it", async () => {
    const graphed = makeRepo("graph-head");
    writeFileSync(path.join(graphed.dir, "a.txt"), "not committed\n");
    git(graphed.dir, "add", "a.txt");
    const staged = git(graphed.dir, "write-tree");
    git(graphed.dir, "commit-graph", "write", "--reachable");
    patchCommitGraph(graphed.dir, graphed.topic, (entry) => Buffer.from(staged, "hex").copy(entry, 0));
    expect(git(graphed.dir, "status", "--porcelain")).toBe("");
    expect(await sourceState(graphed.dir)).toMatchObject({ commit: graphed.topic, clean: false });
  });

  it("answers about the folder it is given, whatever GIT_DIR or GIT_WORK_TREE the caller's environment holds (a hook, a CI wrapper)", async () => {
    const elsewhere = makeRepo("env-elsewhere");
    const here = makeRepo("env-here");
    git(here.dir, "update-ref", "refs/remotes/origin/main", here.reviewed);
    writeFileSync(path.join(here.dir, "a.txt"), "changed\n");
    const saved = { GIT_DIR: process.env.GIT_DIR, GIT_WORK_TREE: process.env.GIT_WORK_TREE };
    try {
      process.env.GIT_DIR = path.join(mkdtempSync(path.join(root, "env-empty-")), ".git");
      execFileSync("git", ["init", "-q", path.dirname(process.env.GIT_DIR)], { env });
      process.env.GIT_WORK_TREE = elsewhere.dir;
      expect(await isReviewed(here.dir, here.first, "origin/main")).toEqual({ kind: "reviewed" });
      expect((await sourceState(here.dir)).clean).toBe(false);
    } finally {
      for (const [name, value] of Object.entries(saved)) if (value === undefined) delete process.env[name]; else process.env[name] = value;
      git(here.dir, "checkout", "-q", "--", "a.txt");
    }
  });

  it("takes config given in the environment as git does (a CI's safe.directory comes so), but not core.ignoreCase or core.fileMode, which would hide a change a build takes", async () => {
    const configured = makeRepo("env-config");
    /** `sourceState` with one config setting given as GIT_CONFIG_COUNT/KEY/VALUE (at the command-line level, above the repository's own). */
    const withConfig = async (key: string, value: string): Promise<Awaited<ReturnType<typeof sourceState>>> => {
      Object.assign(process.env, { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: key, GIT_CONFIG_VALUE_0: value });
      try {
        return await sourceState(configured.dir);
      } finally {
        for (const name of ["GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"]) delete process.env[name];
      }
    };
    // Read: core.autocrlf given so is this machine's conversion, as from ~/.gitconfig.
    expect(await withConfig("core.autocrlf", "true")).toMatchObject({ clean: false, difference: expect.stringContaining("core.autocrlf=true") });
    // Also with GIT_CONFIG set, which in git 2.39 points `git config` alone at one file: the setting is still found.
    process.env.GIT_CONFIG = "/dev/null";
    try {
      expect(await withConfig("core.autocrlf", "true")).toMatchObject({ clean: false, difference: expect.stringContaining("core.autocrlf=true") });
    } finally {
      delete process.env.GIT_CONFIG;
    }
    // An untracked A.TXT beside the tracked a.txt: git with core.ignoreCase=true lists it as nothing.
    writeFileSync(path.join(configured.dir, "A.TXT"), "other\n");
    expect(execFileSync("git", ["-C", configured.dir, "-c", "core.ignoreCase=true", "ls-files", "--others", "--exclude-standard"], { env, encoding: "utf8" })).toBe("");
    expect(await withConfig("core.ignoreCase", "true")).toMatchObject({ clean: false, difference: "untracked: A.TXT" });
    rmSync(path.join(configured.dir, "A.TXT"));
    // An executable bit set here: git with core.fileMode=false does not see it.
    chmodSync(path.join(configured.dir, "a.txt"), 0o755);
    expect(execFileSync("git", ["-C", configured.dir, "-c", "core.fileMode=false", "status", "--porcelain"], { env, encoding: "utf8" })).toBe("");
    expect(await withConfig("core.fileMode", "false")).toMatchObject({ clean: false, difference: expect.stringContaining("a.txt") });
    chmodSync(path.join(configured.dir, "a.txt"), 0o644);
    expect((await sourceState(configured.dir)).clean).toBe(true);
  });

  it("is dirty with a modified file, and with an untracked one (a build context takes it)", async () => {
    writeFileSync(path.join(repo.dir, "a.txt"), "changed\n");
    expect((await sourceState(repo.dir)).clean).toBe(false);
    git(repo.dir, "checkout", "-q", "--", "a.txt");
    expect((await sourceState(repo.dir)).clean).toBe(true);
    writeFileSync(path.join(repo.dir, "new.txt"), "x\n");
    expect((await sourceState(repo.dir)).clean).toBe(false);
    rmSync(path.join(repo.dir, "new.txt"));
  });

  it("names a changed or untracked file as it is spelled, not in git's octal quoting or byte by byte", async () => {
    const named = makeRepo("named-change");
    commitFile(named.dir, "résumé.txt", "1\n", "a name that is not ASCII");
    writeFileSync(path.join(named.dir, "résumé.txt"), "2\n");
    expect((await sourceState(named.dir)).difference).toBe("changed: M résumé.txt");
    git(named.dir, "add", "résumé.txt");
    expect((await sourceState(named.dir)).difference).toBe("changed: M  résumé.txt");
    git(named.dir, "commit", "-q", "-m", "two");
    writeFileSync(path.join(named.dir, "café.txt"), "new\n");
    expect((await sourceState(named.dir)).difference).toBe("untracked: café.txt");
    rmSync(path.join(named.dir, "café.txt"));
    // A name with a line break and an escape: said on one line, its control characters escaped.
    writeFileSync(path.join(named.dir, "x\nclean: nothing changed\u001b[2K"), "1\n");
    expect((await sourceState(named.dir)).difference).toBe("untracked: x\\nclean: nothing changed\\u001b[2K");
    git(named.dir, "add", ".");
    git(named.dir, "commit", "-q", "-m", "three");
    writeFileSync(path.join(named.dir, "x\nclean: nothing changed\u001b[2K"), "2\n");
    expect((await sourceState(named.dir)).difference).toBe("changed: M x\\nclean: nothing changed\\u001b[2K");
    // Every message sourceState gives, not only the listings read as bytes: git's index names a file told not to be looked at; a C1 control too.
    git(named.dir, "checkout", "-q", "--", ".");
    commitFile(named.dir, "y\u009b2K", "1\n", "four");
    git(named.dir, "update-index", "--assume-unchanged", "y\u009b2K");
    writeFileSync(path.join(named.dir, "y\u009b2K"), "2\n");
    expect((await sourceState(named.dir)).difference).toBe("changed, though git is told not to look at it (assume-unchanged or skip-worktree): y\\u009b2K");
  });

  it("is clean with a file the commit's own .gitignore ignores (what a build makes), dirty with one only this machine ignores", async () => {
    const other = makeRepo("ignored");
    commitFile(other.dir, ".gitignore", "rootfs.tar\n", "ignore the rootfs");
    writeFileSync(path.join(other.dir, "rootfs.tar"), "made by a script\n");
    expect((await sourceState(other.dir)).clean).toBe(true);
    // .git/info/exclude and core.excludesFile are this machine's, not the commit's: a build context still takes the file.
    writeFileSync(path.join(other.dir, ".git/info/exclude"), "local.txt\n");
    writeFileSync(path.join(other.dir, "local.txt"), "x\n");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, "local.txt"));
    const excludes = path.join(root, "global-excludes");
    writeFileSync(excludes, "global.txt\n");
    git(other.dir, "config", "core.excludesFile", excludes);
    writeFileSync(path.join(other.dir, "global.txt"), "x\n");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, "global.txt"));
    expect((await sourceState(other.dir)).clean).toBe(true);
    // An untracked .gitignore that ignores itself and a new file.
    mkdirSync(path.join(other.dir, "sub"));
    writeFileSync(path.join(other.dir, "sub/.gitignore"), "*\n");
    writeFileSync(path.join(other.dir, "sub/hidden.txt"), "x\n");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, "sub"), { recursive: true });
    expect((await sourceState(other.dir)).clean).toBe(true);
  });

  it("tells names apart by their bytes, not as UTF-8 reads them (two names that are not UTF-8 both read as U+FFFD)", async () => {
    // Under a folder whose name is not ASCII (UTF-8 "café"), as a checkout may be.
    const bytes = makeRepo("café-not-utf8");
    const at = (...parts: (string | Buffer)[]): Buffer => Buffer.concat([Buffer.from(`${bytes.dir}/`), ...parts.map((part) => (typeof part === "string" ? Buffer.from(part) : part))]);
    writeFileSync(at(".gitignore"), Buffer.concat([Buffer.from("*.o\n"), Buffer.from([0xff]), Buffer.from("/\n")]));
    git(bytes.dir, "add", ".gitignore");
    git(bytes.dir, "commit", "-q", "-m", "ignore *.o and a folder whose name is not UTF-8");
    // Build outputs under a folder whose name is not UTF-8 (latin1 "café") stay clean, and are read, not refused.
    mkdirSync(at("out"));
    writeFileSync(at("out/b.o"), "made\n");
    mkdirSync(at("out/caf", Buffer.from([0xe9])));
    writeFileSync(at("out/caf", Buffer.from([0xe9]), "/a.o"), "made\n");
    expect(await sourceState(bytes.dir)).toMatchObject({ clean: true });
    // A folder ignored by its own name (\xff/) is skipped, an empty folder in it too; a .git beside it, in \xfe/, is not.
    mkdirSync(at("out/", Buffer.from([0xff])));
    writeFileSync(at("out/", Buffer.from([0xff]), "/x"), "made\n");
    mkdirSync(at("out/", Buffer.from([0xff]), "/empty"));
    mkdirSync(at("out/", Buffer.from([0xfe])));
    writeFileSync(at("out/", Buffer.from([0xfe]), "/a.o"), "made\n");
    expect(await sourceState(bytes.dir)).toMatchObject({ clean: true });
    writeFileSync(at("out/", Buffer.from([0xfe]), "/.git"), "gitdir: /elsewhere\n");
    expect((await sourceState(bytes.dir)).difference).toBe("a .git inside the checkout, which git does not show and a build context takes: out/\ufffd/.git");
    rmSync(at("out"), { recursive: true });
    // The same in untracked folders at the top, both named in bytes that read as U+FFFD in UTF-8.
    for (const name of [0xe9, 0xfd]) {
      mkdirSync(at(Buffer.from([name])));
      writeFileSync(at(Buffer.from([name]), "/a.o"), "made\n");
    }
    expect(await sourceState(bytes.dir)).toMatchObject({ clean: true });
    writeFileSync(at(Buffer.from([0xe9]), "/.git"), "gitdir: /elsewhere\n");
    expect((await sourceState(bytes.dir)).difference).toBe("a .git inside the checkout, which git does not show and a build context takes: \ufffd/.git");
    rmSync(at(Buffer.from([0xe9]), "/.git"));
    mkdirSync(at(Buffer.from([0xfc])));
    expect((await sourceState(bytes.dir)).difference).toBe("an empty folder, which git does not show and a build context takes: \ufffd/");
  });

  it("is dirty with a tracked name that is not UTF-8 (it would read as another tracked name spelled with U+FFFD), and cannot tell for a checkout whose path is not UTF-8", async () => {
    const twins = makeRepo("tracked-not-utf8");
    const at = (...parts: (string | Buffer)[]): Buffer => Buffer.concat([Buffer.from(`${twins.dir}/`), ...parts.map((part) => (typeof part === "string" ? Buffer.from(part) : part))]);
    mkdirSync(at("d", Buffer.from([0xe9])));
    writeFileSync(at("d", Buffer.from([0xe9]), "/f"), "1\n");
    mkdirSync(at("d\ufffd"));
    writeFileSync(at("d\ufffd/f"), "1\n");
    git(twins.dir, "add", ".");
    git(twins.dir, "commit", "-q", "-m", "twins");
    chmodSync(at("d", Buffer.from([0xe9]), "/f"), 0o4644);
    expect((await sourceState(twins.dir)).difference).toBe("a tracked name that is not UTF-8, which Strata cannot check (rename it): d\ufffd/f");
    // A checkout whose own path is not UTF-8, beside a clean clone at the path that reads the same.
    const latin = Buffer.concat([Buffer.from(`${root}/caf`), Buffer.from([0xe9])]);
    // Arguments reach git as UTF-8: made under an ASCII name, then renamed by its bytes.
    execFileSync("git", ["clone", "-q", makeRepo("latin-source").dir, path.join(root, "latin-clone")], { env });
    renameSync(path.join(root, "latin-clone"), latin);
    execFileSync("git", ["clone", "-q", makeRepo("latin-twin").dir, `${root}/caf\ufffd`], { env });
    symlinkSync(latin, path.join(root, "latin-link"));
    writeFileSync(Buffer.concat([latin, Buffer.from("/a.txt")]), "changed\n");
    await expect(sourceState(path.join(root, "latin-link"))).rejects.toThrow(/is not UTF-8, which Strata cannot name: move the checkout/);
  });

  it("cannot tell when git reads a file by a path that is not UTF-8 (its git folder's, core.attributesFile), and is dirty with a submodule or symlink named so", async () => {
    // A separate git folder whose path is not UTF-8 (moved there by its bytes; arguments reach git as UTF-8).
    const separate = makeRepo("separate-git-dir");
    const gitFolder = Buffer.concat([Buffer.from(`${root}/g`), Buffer.from([0xe9])]);
    renameSync(path.join(separate.dir, ".git"), gitFolder);
    writeFileSync(path.join(separate.dir, ".git"), Buffer.concat([Buffer.from("gitdir: "), gitFolder, Buffer.from("\n")]));
    await expect(sourceState(separate.dir)).rejects.toThrow(/the path of its git folder's info\/attributes .*\ufffd.* is not UTF-8, which Strata cannot name/);
    // core.attributesFile at a path that is not UTF-8: Strata would open another file than git reads.
    const configured = makeRepo("attributes-not-utf8");
    const attributes = Buffer.concat([Buffer.from(`${root}/attr`), Buffer.from([0xe9])]);
    writeFileSync(attributes, "a.txt filter=swap\n");
    writeFileSync(path.join(configured.dir, ".git/config"), Buffer.concat([readFileSync(path.join(configured.dir, ".git/config")), Buffer.from("[core]\n\tattributesFile = "), attributes, Buffer.from("\n")]));
    await expect(sourceState(configured.dir)).rejects.toThrow(/git config core.attributesFile is ".*\ufffd", which Strata does not read as git would/);
    // A submodule entry and a symlink whose names are not UTF-8 (written by their bytes through update-index).
    for (const [mode, kind] of [["160000", "submodule"], ["120000", "symlink"]] as const) {
      const named = makeRepo(`${kind}-not-utf8`);
      const name = Buffer.concat([Buffer.from(`${kind}-`), Buffer.from([0xe9])]);
      const object = kind === "submodule" ? named.first : execFileSync("git", ["-C", named.dir, "hash-object", "-w", "--stdin"], { env, input: "a.txt", encoding: "utf8" }).trim();
      if (kind === "symlink") symlinkSync("a.txt", Buffer.concat([Buffer.from(`${named.dir}/`), name]));
      else mkdirSync(Buffer.concat([Buffer.from(`${named.dir}/`), name]));
      execFileSync("git", ["-C", named.dir, "update-index", "--index-info"], { env, input: Buffer.concat([Buffer.from(`${mode} ${object} 0\t`), name, Buffer.from("\n")]) });
      git(named.dir, "commit", "-q", "-m", kind);
      expect((await sourceState(named.dir)).difference).toBe(`a tracked name that is not UTF-8, which Strata cannot check (rename it): ${kind}-\ufffd`);
    }
  });

  it("refuses a folder outside the work tree git names for its repository (core.worktree pointing at a clean copy)", async () => {
    const moved = makeRepo("worktree-elsewhere");
    mkdirSync(path.join(moved.dir, "catalog"));
    writeFileSync(path.join(moved.dir, "catalog/b.txt"), "1\n");
    git(moved.dir, "add", "catalog");
    git(moved.dir, "commit", "-q", "-m", "catalog");
    const mirror = path.join(moved.dir, "mirror");
    mkdirSync(mirror);
    git(moved.dir, `--work-tree=${mirror}`, "checkout", "-q", "-f", "HEAD", "--", ".");
    git(moved.dir, "config", "core.worktree", mirror);
    writeFileSync(path.join(moved.dir, "catalog/b.txt"), "changed\n");
    expect(git(path.join(moved.dir, "catalog"), "status", "--porcelain")).toBe("");
    await expect(sourceState(path.join(moved.dir, "catalog"))).rejects.toThrow(/is not in the work tree git names for its repository \(.*mirror: the repository's core.worktree points there\).*git config --unset core.worktree/);
    // A folder beside it whose name starts with the work tree's is not in it.
    mkdirSync(path.join(moved.dir, "mirror-old"));
    writeFileSync(path.join(moved.dir, "mirror-old/c.txt"), "x\n");
    await expect(sourceState(path.join(moved.dir, "mirror-old"))).rejects.toThrow(/mirror-old is not in the work tree git names for its repository/);
    // Its own work tree, named by core.worktree, is answered about as any checkout.
    expect(await sourceState(mirror)).toMatchObject({ clean: true });
  });

  it("hashes a tracked name that ends in a carriage return as itself, not as its twin without one", async () => {
    const twins = makeRepo("carriage-return");
    writeFileSync(path.join(twins.dir, "run.sh"), "echo 1\n");
    writeFileSync(path.join(twins.dir, "run.sh\r"), "echo 1\n");
    git(twins.dir, "add", "run.sh", "run.sh\r");
    git(twins.dir, "commit", "-q", "-m", "twins");
    expect(await sourceState(twins.dir)).toMatchObject({ clean: true });
    expect(sameSizeEditGitMisses(twins.dir, "run.sh\r")).toBe(true);
    expect((await sourceState(twins.dir)).difference).toBe("changed, though git status does not see it (a same-size edit its stat check missed): run.sh\\r");
  });

  it("is dirty with what git never shows and a build context takes: an empty folder, a .git inside the checkout's folders, a setuid or setgid file", async () => {
    const other = makeRepo("hidden");
    mkdirSync(path.join(other.dir, "layers/keystone"), { recursive: true });
    writeFileSync(path.join(other.dir, "layers/keystone/Dockerfile"), "FROM scratch\n");
    writeFileSync(path.join(other.dir, ".gitignore"), "*.o\nnode_modules/\n");
    git(other.dir, "add", ".gitignore", "layers");
    git(other.dir, "commit", "-q", "-m", "a layer");
    const state = (): Promise<{ clean: boolean; difference?: string }> => sourceState(other.dir);
    const seenByGit = (): string => git(other.dir, "status", "--porcelain", "--untracked-files=all", "--ignored=no");
    expect(await state()).toMatchObject({ clean: true });
    // What a build makes stays clean: ignored files in a folder of their own, an ignored folder whose own folders are empty.
    mkdirSync(path.join(other.dir, "layers/keystone/out"));
    writeFileSync(path.join(other.dir, "layers/keystone/out/a.o"), "made\n");
    mkdirSync(path.join(other.dir, "layers/keystone/node_modules/pkg/empty"), { recursive: true });
    mkdirSync(path.join(other.dir, "layers/keystone/out/node_modules/pkg/empty"), { recursive: true });
    expect(await state()).toMatchObject({ clean: true });
    // An empty folder: in a folder of the commit, and beside ignored files in a folder of its own.
    for (const empty of ["layers/keystone/empty", "layers/keystone/out/empty", "empty"]) {
      mkdirSync(path.join(other.dir, empty));
      expect(seenByGit()).toBe("");
      expect(await state()).toEqual(expect.objectContaining({ clean: false, difference: `an empty folder, which git does not show and a build context takes: ${empty}/` }));
      rmSync(path.join(other.dir, empty), { recursive: true });
    }
    expect(await state()).toMatchObject({ clean: true });
    // A .git folder or file inside a folder of the commit (or one of its folders' folders), in an untracked folder of ignored
    // files, and in a folder of such a folder that holds only ignored files too (git lists it as ignored, looking at no .git).
    mkdirSync(path.join(other.dir, "layers/keystone/out/sub"));
    writeFileSync(path.join(other.dir, "layers/keystone/out/sub/b.o"), "made\n");
    for (const [folder, kind] of [["layers/keystone", "folder"], ["layers", "file"], ["layers/keystone/out", "folder"], ["layers/keystone/out/sub", "file"]] as const) {
      const planted = path.join(other.dir, folder, ".git");
      if (kind === "folder") {
        mkdirSync(planted);
        writeFileSync(path.join(planted, "config"), "x\n");
      } else writeFileSync(planted, "gitdir: /elsewhere\n");
      expect(seenByGit()).toBe("");
      expect((await state()).difference).toBe(`a .git inside the checkout, which git does not show and a build context takes: ${folder}/.git`);
      rmSync(planted, { recursive: true });
    }
    expect(await state()).toMatchObject({ clean: true });
    // The setuid or setgid bit, which git does not record; group-writable (umask 002) is ordinary.
    const dockerfile = path.join(other.dir, "layers/keystone/Dockerfile");
    for (const mode of [0o4644, 0o2644]) {
      chmodSync(dockerfile, mode);
      expect(seenByGit()).toBe("");
      expect((await state()).difference).toBe("the setuid or setgid bit, which git does not record and a build's COPY keeps, on layers/keystone/Dockerfile (chmod ug-s)");
    }
    chmodSync(dockerfile, 0o664);
    expect(await state()).toMatchObject({ clean: true });
    // A tracked executable (mode 100755) made setuid: what a setuid-root program in the image would be.
    const entrypoint = path.join(other.dir, "layers/keystone/entrypoint.sh");
    writeFileSync(entrypoint, "#!/bin/sh\n");
    chmodSync(entrypoint, 0o755);
    git(other.dir, "add", "layers/keystone/entrypoint.sh");
    git(other.dir, "commit", "-q", "-m", "an entrypoint");
    chmodSync(entrypoint, 0o4755);
    expect(seenByGit()).toBe("");
    expect((await state()).difference).toBe("the setuid or setgid bit, which git does not record and a build's COPY keeps, on layers/keystone/entrypoint.sh (chmod ug-s)");
    chmodSync(entrypoint, 0o755);
    expect(await state()).toMatchObject({ clean: true });
    // A FIFO (which Docker's context takes) or a socket, ignored by a pattern or not: in a folder of the commit, in the
    // checkout's top, in an untracked folder of ignored files (review 119: git lists none of them).
    mkdirSync(path.join(other.dir, "layers/café"));
    writeFileSync(path.join(other.dir, "layers/café/Dockerfile"), "FROM scratch\n");
    git(other.dir, "add", "layers/café");
    git(other.dir, "commit", "-q", "-m", "a layer whose name is not ASCII");
    expect(await state()).toMatchObject({ clean: true });
    for (const fifo of ["layers/keystone/pipe", "pipe.o", "layers/keystone/out/pipe", "layers/café/pipe"]) {
      execFileSync("mkfifo", [path.join(other.dir, fifo)]);
      expect(seenByGit()).toBe("");
      expect((await state()).difference).toBe(`a FIFO, socket or device node, which git does not show and a build context can take: ${fifo}`);
      rmSync(path.join(other.dir, fifo));
    }
    const socketServer = createServer();
    await new Promise<void>((resolve) => socketServer.listen(path.join(other.dir, "layers/keystone/control.sock"), resolve));
    try {
      expect(seenByGit()).toBe("");
      expect((await state()).difference).toBe("a FIFO, socket or device node, which git does not show and a build context can take: layers/keystone/control.sock");
    } finally {
      await new Promise((resolve) => socketServer.close(resolve));
    }
    expect(await state()).toMatchObject({ clean: true });
  });

  it("is dirty with a change git is told not to look at: assume-unchanged, skip-worktree, a file gone from a sparse tree", async () => {
    const other = makeRepo("flagged");
    writeFileSync(path.join(other.dir, "b.txt"), "b\n");
    git(other.dir, "add", "b.txt");
    git(other.dir, "commit", "-q", "-m", "b");
    git(other.dir, "update-index", "--assume-unchanged", "a.txt");
    git(other.dir, "update-index", "--skip-worktree", "b.txt");
    // Marked, unchanged: clean.
    expect((await sourceState(other.dir)).clean).toBe(true);
    writeFileSync(path.join(other.dir, "a.txt"), "changed behind git's back\n");
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(other.dir)).clean).toBe(false);
    writeFileSync(path.join(other.dir, "a.txt"), git(other.dir, "show", "HEAD:a.txt") + "\n");
    expect((await sourceState(other.dir)).clean).toBe(true);
    writeFileSync(path.join(other.dir, "b.txt"), "changed too\n");
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, "b.txt"));
    expect((await sourceState(other.dir)).clean).toBe(false);
    // A symlink where the flagged file was, to the same bytes outside the checkout: a build's COPY keeps the link.
    const outside = path.join(mkdtempSync(path.join(root, "outside-")), "b.txt");
    writeFileSync(outside, "b\n");
    symlinkSync(outside, path.join(other.dir, "b.txt"));
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect(await sourceState(other.dir)).toMatchObject({ clean: false, difference: expect.stringContaining("b.txt") });
  });

  it("is dirty with a flagged file's folder swapped for a symlink to a folder holding the same file (and more), where the commit's .gitignore names the folder", async () => {
    const linked = makeRepo("flagged-folder");
    mkdirSync(path.join(linked.dir, "d"));
    mkdirSync(path.join(linked.dir, "e"));
    writeFileSync(path.join(linked.dir, "d/b.txt"), "b\n");
    writeFileSync(path.join(linked.dir, "e/b.txt"), "b\n");
    writeFileSync(path.join(linked.dir, "e/run.sh"), "echo not in d\n");
    writeFileSync(path.join(linked.dir, ".gitignore"), "d\n");
    git(linked.dir, "add", ".gitignore", "e");
    git(linked.dir, "add", "-f", "d/b.txt");
    git(linked.dir, "commit", "-q", "-m", "d and e");
    git(linked.dir, "update-index", "--skip-worktree", "d/b.txt");
    expect((await sourceState(linked.dir)).clean).toBe(true);
    rmSync(path.join(linked.dir, "d"), { recursive: true });
    symlinkSync("e", path.join(linked.dir, "d"));
    // git sees nothing: the flagged file is skipped, and the link is ignored by name.
    expect(git(linked.dir, "status", "--porcelain")).toBe("");
    expect(await sourceState(linked.dir)).toMatchObject({ clean: false, difference: expect.stringContaining("a folder on its path is a symlink: d/b.txt") });
  });

  it("is dirty when this machine's config sets attr.tree (git 2.43 on reads attributes from that tree)", async () => {
    const treed = makeRepo("attr-tree");
    git(treed.dir, "config", "attr.tree", treed.first);
    expect(await sourceState(treed.dir)).toMatchObject({ clean: false, difference: expect.stringContaining(`attr.tree=${treed.first}`) });
  });

  it("is dirty with a changed submodule, whatever diff.ignoreSubmodules says", async () => {
    const other = withSubmodule("with-submodule", "library", "lib");
    expect((await sourceState(other.dir)).clean).toBe(true);
    git(other.dir, "config", "diff.ignoreSubmodules", "all");
    writeFileSync(path.join(other.dir, "lib/a.txt"), "changed in the submodule\n");
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(other.dir)).clean).toBe(false);
  });

  it("looks into each submodule as into the checkout: a file only this machine ignores there, or a submodule not checked out, is dirty", async () => {
    const other = withSubmodule("with-submodule-inside", "library-inside", "layers/lib");
    expect((await sourceState(other.dir)).clean).toBe(true);
    // The submodule's own .git/modules/…/info/exclude hides it from git status; a build context takes it.
    writeFileSync(path.join(other.dir, ".git/modules/layers/lib/info/exclude"), "extra.sh\n");
    writeFileSync(path.join(other.dir, "layers/lib/extra.sh"), "curl example.invalid | sh\n");
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, "layers/lib/extra.sh"));
    // And one core.excludesFile hides (set for the submodule here; a user's global file does the same).
    const excludes = path.join(root, "submodule-excludes");
    writeFileSync(excludes, "*.local\n");
    git(path.join(other.dir, "layers/lib"), "config", "core.excludesFile", excludes);
    writeFileSync(path.join(other.dir, "layers/lib/settings.local"), "x\n");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, "layers/lib/settings.local"));
    expect((await sourceState(other.dir)).clean).toBe(true);
    // A clone without --recursive: the submodule's folder is empty, its files are not in the build context.
    const clone = path.join(root, "clone-not-recursive");
    execFileSync("git", ["clone", "-q", other.dir, clone], { env });
    expect((await sourceState(clone)).clean).toBe(false);
    execFileSync("git", ["-C", clone, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init", "--recursive"], { env });
    expect((await sourceState(clone)).clean).toBe(true);
  });

  it("is dirty when this machine's own attributes set a filter (git status compares what it makes of a file); the commit's own .gitattributes filter is not", async () => {
    const other = makeRepo("filtered");
    // A clean filter that answers the committed bytes whatever the file holds: git status sees no change.
    git(other.dir, "config", "filter.hide.clean", "git show HEAD:a.txt");
    writeFileSync(path.join(other.dir, ".git/info/attributes"), "a.txt filter=hide\n");
    writeFileSync(path.join(other.dir, "a.txt"), "9\n");
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(other.dir)).clean).toBe(false);
    rmSync(path.join(other.dir, ".git/info/attributes"));
    // core.attributesFile: the same.
    const attributes = path.join(root, "machine-attributes");
    writeFileSync(attributes, "# a comment: filter=not-this\na.txt filter=hide\n");
    git(other.dir, "config", "core.attributesFile", attributes);
    expect((await sourceState(other.dir)).clean).toBe(false);
    git(other.dir, "config", "--unset", "core.attributesFile");
    writeFileSync(path.join(other.dir, "a.txt"), `${git(other.dir, "show", "HEAD:a.txt")}\n`);
    git(other.dir, "add", "a.txt");
    // A filter the commit sets (as Git LFS does) was reviewed with it: clean while the bytes are the commit's.
    writeFileSync(path.join(other.dir, ".gitattributes"), "b.txt filter=copy\n");
    git(other.dir, "config", "filter.copy.clean", "cat");
    git(other.dir, "config", "filter.copy.smudge", "cat");
    writeFileSync(path.join(other.dir, "b.txt"), "b\n");
    git(other.dir, "add", ".gitattributes", "b.txt");
    git(other.dir, "commit", "-q", "-m", "a committed filter");
    expect((await sourceState(other.dir)).clean).toBe(true);
    writeFileSync(path.join(other.dir, "b.txt"), "changed\n");
    expect((await sourceState(other.dir)).clean).toBe(false);
  });

  it("counts a line-ending conversion this machine sets like a filter, finds a relative core.attributesFile where git does, and a conversion that reaches no tracked file leaves the tree clean", async () => {
    const other = makeRepo("converted");
    // text eol=crlf set here alone: the file holds CRLF, git status compares it converted back to LF.
    writeFileSync(path.join(other.dir, ".git/info/attributes"), "a.txt text eol=crlf\n");
    writeFileSync(path.join(other.dir, "a.txt"), `${git(other.dir, "show", "HEAD:a.txt")}\r\n`);
    git(other.dir, "add", "a.txt");
    expect(git(other.dir, "status", "--porcelain")).toBe("");
    expect(git(other.dir, "diff", "--cached", "--stat")).toBe("");
    const converted = await sourceState(other.dir);
    expect(converted.clean).toBe(false);
    expect(converted.difference).toMatch(/this machine's attributes \(.*info\/attributes\) set text eol=crlf on a\.txt/);
    rmSync(path.join(other.dir, ".git/info/attributes"));
    // The commit's bytes written back (a reset or checkout may keep the CRLF file: its stat data says it is up to date).
    writeFileSync(path.join(other.dir, "a.txt"), `${git(other.dir, "show", "HEAD:a.txt")}\n`);
    // The index still holds the CRLF file's size, which git status takes for a change without hashing (even after a refresh): added again, the same blob.
    git(other.dir, "add", "a.txt");
    expect((await sourceState(other.dir)).clean).toBe(true);
    // core.attributesFile relative to the checkout's top folder, as git reads it (not this process's folder).
    writeFileSync(path.join(other.dir, "local-attributes"), "*.txt filter=hide\n");
    writeFileSync(path.join(other.dir, ".git/info/exclude"), "");
    git(other.dir, "config", "core.attributesFile", "local-attributes");
    git(other.dir, "config", "filter.hide.clean", "cat");
    const relative = await sourceState(other.dir);
    // The attributes file itself is untracked, so either difference may be named first; the filter is named once it is committed.
    expect(relative.clean).toBe(false);
    git(other.dir, "add", "local-attributes");
    git(other.dir, "commit", "-q", "-m", "the attributes file itself, tracked");
    expect((await sourceState(other.dir)).difference).toMatch(/set filter=hide on a\.txt/);
    // A global filter for files this checkout has none of (nbstripout's *.ipynb) reaches nothing: clean.
    writeFileSync(path.join(other.dir, "local-attributes"), "*.ipynb filter=nbstripout\n# *.txt filter=hide\n");
    git(other.dir, "commit", "-q", "-am", "notebooks only");
    expect(await sourceState(other.dir)).toMatchObject({ clean: true });
    writeFileSync(path.join(other.dir, "n.ipynb"), "{}\n");
    git(other.dir, "add", "n.ipynb");
    git(other.dir, "commit", "-q", "-m", "a notebook");
    expect((await sourceState(other.dir)).difference).toMatch(/set filter=nbstripout on n\.ipynb/);
    // A macro of this machine's that converts cannot be placed: dirty, said so.
    writeFileSync(path.join(other.dir, ".git/info/attributes"), "[attr]mine filter=hide\n*.md mine\n");
    expect((await sourceState(other.dir)).difference).toMatch(/set filter=hide in a way Strata cannot place/);
  });

  it("is dirty with core.autocrlf, an ignored .gitattributes, a macro of the commit's that this machine's attributes apply, and a same-size edit git's stat check is told to skip", async () => {
    const crlfText = (dir: string): string => `${git(dir, "show", "HEAD:a.txt")}\r\n`;
    // core.autocrlf: CRLF in the file, git add keeps the commit's LF blob, git status shows nothing.
    const autocrlf = makeRepo("autocrlf");
    git(autocrlf.dir, "config", "core.autocrlf", "true");
    writeFileSync(path.join(autocrlf.dir, "a.txt"), crlfText(autocrlf.dir));
    git(autocrlf.dir, "add", "a.txt");
    expect(git(autocrlf.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(autocrlf.dir)).difference).toMatch(/core\.autocrlf=true/);
    git(autocrlf.dir, "config", "core.autocrlf", "false");
    writeFileSync(path.join(autocrlf.dir, "a.txt"), `${git(autocrlf.dir, "show", "HEAD:a.txt")}\n`);
    git(autocrlf.dir, "add", "a.txt");
    expect((await sourceState(autocrlf.dir)).difference).toBeUndefined();
    // A .gitattributes the commit's .gitignore ignores, that converts what it names.
    const hidden = makeRepo("ignored-attributes");
    writeFileSync(path.join(hidden.dir, ".gitignore"), ".*\n!.gitignore\n");
    git(hidden.dir, "add", ".gitignore");
    git(hidden.dir, "commit", "-q", "-m", "ignore dot files");
    writeFileSync(path.join(hidden.dir, ".gitattributes"), "* text eol=crlf\n");
    expect((await sourceState(hidden.dir)).difference).toBe("untracked: .gitattributes");
    // A macro the commit defines, applied by a line of this machine's alone.
    const macro = makeRepo("machine-macro");
    writeFileSync(path.join(macro.dir, ".gitattributes"), "[attr]unix text eol=lf\n");
    git(macro.dir, "add", ".gitattributes");
    git(macro.dir, "commit", "-q", "-m", "a macro");
    expect(await sourceState(macro.dir)).toMatchObject({ clean: true });
    writeFileSync(path.join(macro.dir, ".git/info/attributes"), "*.txt unix\n");
    expect((await sourceState(macro.dir)).difference).toMatch(/set unix on a\.txt/);
    // Harmless ones (diff, merge, an unset text) reach files and leave it clean.
    writeFileSync(path.join(macro.dir, ".git/info/attributes"), "*.txt diff=plain merge=union -text !eol linguist-generated\n");
    expect(await sourceState(macro.dir)).toMatchObject({ clean: true });
    // core.trustctime=false: a same-size edit with its mtime put back passes git's stat check.
    const stat = makeRepo("trustctime");
    git(stat.dir, "config", "core.trustctime", "false");
    expect(sameSizeEditGitMisses(stat.dir, "a.txt")).toBe(true);
    // Strata's own status looks at ctime whatever the config says, so it may see the edit itself; either way, dirty.
    expect((await sourceState(stat.dir)).difference).toMatch(/^changed(: M a\.txt|, though git status does not see it \(a same-size edit its stat check missed\): a\.txt)$/);
  });

  it("reads every file's bytes: a same-size edit in the second of the index's refresh, under git's defaults, and an edited file whose name starts with a quote", async () => {
    const quick = makeRepo("same-second");
    expect(sameSizeEditGitMisses(quick.dir, "a.txt")).toBe(true);
    expect((await sourceState(quick.dir)).difference).toBe("changed, though git status does not see it (a same-size edit its stat check missed): a.txt");
    const quoted = makeRepo("quoted-name");
    writeFileSync(path.join(quoted.dir, '"x"'), "one\n");
    writeFileSync(path.join(quoted.dir, "x"), "two\n");
    git(quoted.dir, "add", '"x"', "x");
    git(quoted.dir, "commit", "-q", "-m", "a quoted name");
    git(quoted.dir, "update-index", "--assume-unchanged", '"x"');
    // "x" now holds x's bytes; a reader that unquoted the name would hash x and see no change.
    writeFileSync(path.join(quoted.dir, '"x"'), "two\n");
    expect((await sourceState(quoted.dir)).difference).toBe('changed, though git is told not to look at it (assume-unchanged or skip-worktree): "x"');
  });

  it("holds a file to what checking out its commit writes: the commit's own conversions pass, bytes they do not explain are dirty", async () => {
    // The commit says text eol=lf; a CRLF copy added again keeps the LF blob, and git status shows nothing.
    const normalized = makeRepo("normalized");
    writeFileSync(path.join(normalized.dir, ".gitattributes"), "* text=auto eol=lf\n");
    git(normalized.dir, "add", ".gitattributes");
    git(normalized.dir, "commit", "-q", "-m", "normalize");
    writeFileSync(path.join(normalized.dir, "a.txt"), `${git(normalized.dir, "show", "HEAD:a.txt")}\r\n`);
    git(normalized.dir, "add", "a.txt");
    expect(git(normalized.dir, "status", "--porcelain")).toBe("");
    expect((await sourceState(normalized.dir)).difference).toBe("changed: a.txt is not what checking out its commit writes (its bytes differ after the commit's own conversions)");
    // eol=crlf from the commit: the checked-out CRLF bytes are not the LF blob, and are what a checkout writes.
    const crlf = makeRepo("committed-crlf");
    writeFileSync(path.join(crlf.dir, ".gitattributes"), "*.bat text eol=crlf\n");
    writeFileSync(path.join(crlf.dir, "run.bat"), "echo one\r\n");
    git(crlf.dir, "add", ".gitattributes", "run.bat");
    git(crlf.dir, "commit", "-q", "-m", "a batch file");
    rmSync(path.join(crlf.dir, "run.bat"));
    git(crlf.dir, "checkout", "-q", "--", "run.bat");
    expect(await sourceState(crlf.dir)).toMatchObject({ clean: true });
    // A filter the commit names (its driver configured here, as Git LFS's is): the smudged bytes are the commit's.
    const filtered = makeRepo("committed-filter");
    git(filtered.dir, "config", "filter.upper.clean", "tr A-Z a-z");
    git(filtered.dir, "config", "filter.upper.smudge", "tr a-z A-Z");
    writeFileSync(path.join(filtered.dir, ".gitattributes"), "*.up filter=upper\n");
    writeFileSync(path.join(filtered.dir, "f.up"), "HELLO\n");
    git(filtered.dir, "add", ".gitattributes", "f.up");
    git(filtered.dir, "commit", "-q", "-m", "a filtered file");
    expect(git(filtered.dir, "show", "HEAD:f.up")).toBe("hello");
    expect(await sourceState(filtered.dir)).toMatchObject({ clean: true });
    // A required driver that fails on a changed file: dirty.
    git(filtered.dir, "config", "filter.upper.clean", "false");
    git(filtered.dir, "config", "filter.upper.required", "true");
    writeFileSync(path.join(filtered.dir, "f.up"), "HELLO!\n");
    expect((await sourceState(filtered.dir)).clean).toBe(false);
    // An empty core.autocrlf is false to git: no conversion, clean.
    const empty = makeRepo("autocrlf-empty");
    git(empty.dir, "config", "core.autocrlf", "");
    expect(await sourceState(empty.dir)).toMatchObject({ clean: true });
  });

  it("finds its scratch attributes file when TMPDIR is relative (git runs in the checkout's folder)", async () => {
    const other = makeRepo("relative-tmp");
    writeFileSync(path.join(other.dir, ".git/info/attributes"), "a.txt filter=hide\n");
    const saved = process.env.TMPDIR;
    const here = mkdtempSync(path.join(root, "cwd-"));
    mkdirSync(path.join(here, "tmp"));
    const cwd = process.cwd();
    process.chdir(here);
    process.env.TMPDIR = "tmp";
    try {
      expect((await sourceState(other.dir)).difference).toMatch(/set filter=hide on a\.txt/);
    } finally {
      process.chdir(cwd);
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it("says why a tree is not clean: the run warns with it (the provenance records only dirty)", async () => {
    const other = withSubmodule("with-submodule-reason", "library-reason", "lib");
    const clone = path.join(root, "clone-reason");
    execFileSync("git", ["clone", "-q", other.dir, clone], { env });
    expect(await sourceState(clone)).toMatchObject({ clean: false, difference: "submodule not checked out: lib (git submodule update --init --recursive)" });
    expect(await sourceState(other.dir)).not.toHaveProperty("difference");
  });

  it("names origin's URL without the credentials in it", async () => {
    const other = makeRepo("with-origin");
    git(other.dir, "remote", "add", "origin", "https://ci:s3cret-token@git.example.org/team/strata.git");
    const state = await sourceState(other.dir);
    expect(state.repository).toBe("https://git.example.org/team/strata.git");
    expect(JSON.stringify(state)).not.toContain("s3cret");
    expect(publishableRemote("git@git.example.org:team/strata.git")).toBe("git@git.example.org:team/strata.git");
    expect(publishableRemote("ssh://git@host/x.git\n")).toBe("ssh://host/x.git");
  });

  it("refuses a folder that is no git checkout, and a checkout with no commit", async () => {
    const plain = mkdtempSync(path.join(root, "plain-"));
    await expect(sourceState(plain)).rejects.toThrow(/cannot tell which git checkout/);
    const empty = path.join(root, "empty");
    execFileSync("git", ["init", "-q", empty], { env });
    await expect(sourceState(empty)).rejects.toThrow(/no commit at HEAD/);
  });
});

describe("reviewed commits", () => {
  const repo = makeRepo("review");
  // What a clone that fetched the reviewed branch has: origin/main at the reviewed commit.
  git(repo.dir, "update-ref", "refs/remotes/origin/main", repo.reviewed);

  it("is reviewed when the reviewed ref contains the commit, its tip included; a tag serves as well", async () => {
    expect(await isReviewed(repo.dir, repo.first, "origin/main")).toEqual({ kind: "reviewed" });
    expect(await isReviewed(repo.dir, repo.reviewed, "refs/remotes/origin/main")).toEqual({ kind: "reviewed" });
    git(repo.dir, "tag", "v1", repo.reviewed);
    expect(await isReviewed(repo.dir, repo.first, "v1")).toEqual({ kind: "reviewed" });
    expect(await isReviewed(repo.dir, repo.topic, "v1")).toMatchObject({ kind: "not reviewed" });
  });

  it("could not tell for a ref whose name is not UTF-8 (it would read as another ref spelled with U+FFFD)", async () => {
    const named = makeRepo("ref-not-utf8");
    // origin/HEAD names r\xe9viewed (at the reviewed commit); r\ufffdviewed, pushed by anyone, holds the unreviewed one.
    const latinRef = Buffer.concat([Buffer.from("refs/remotes/origin/r"), Buffer.from([0xe9]), Buffer.from("viewed")]);
    mkdirSync(path.join(named.dir, ".git/refs/remotes/origin"), { recursive: true });
    writeFileSync(Buffer.concat([Buffer.from(`${named.dir}/.git/`), latinRef]), `${named.reviewed}\n`);
    git(named.dir, "update-ref", "refs/remotes/origin/r\ufffdviewed", named.topic);
    writeFileSync(path.join(named.dir, ".git/refs/remotes/origin/HEAD"), Buffer.concat([Buffer.from("ref: "), latinRef, Buffer.from("\n")]));
    expect(await isReviewed(named.dir, named.topic, "origin/HEAD")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("which is not UTF-8") });
  });

  it("is not reviewed when the ref does not contain it", async () => {
    expect(await isReviewed(repo.dir, repo.topic, "origin/main")).toMatchObject({ kind: "not reviewed" });
  });

  it("could not tell for an unknown ref, an unknown commit, a bad id or a folder with no repository; never reviewed", async () => {
    expect(await isReviewed(repo.dir, repo.first, "origin/release")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("git fetch") });
    expect(await isReviewed(repo.dir, "f".repeat(40), "origin/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("not in the checkout") });
    expect(await isReviewed(repo.dir, "--all", "origin/main")).toMatchObject({ kind: "could not tell" });
    expect(await isReviewed(repo.dir, repo.first, "--all")).toMatchObject({ kind: "could not tell" });
    expect(await isReviewed(mkdtempSync(path.join(root, "none-")), repo.first, "origin/main")).toMatchObject({ kind: "could not tell" });
  });

  it("could not tell, not \"not reviewed\", in a shallow clone whose history would link the commit to the ref", async () => {
    // A depth-1 clone of main, then the first commit fetched alone: both are there, the history between them is not.
    const shallow = path.join(root, "review-shallow");
    execFileSync("git", ["clone", "-q", "--depth", "1", "--branch", "main", `file://${repo.dir}`, shallow], { env });
    git(shallow, "fetch", "-q", "--depth", "1", "origin", repo.first);
    git(shallow, "checkout", "-q", "--detach");
    expect(git(shallow, "rev-parse", "--is-shallow-repository")).toBe("true");
    expect(await isReviewed(shallow, repo.first, "origin/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("shallow clone") });
    // Its whole history fetched, the same question has its answer.
    git(shallow, "fetch", "-q", "--unshallow", "origin");
    expect(await isReviewed(shallow, repo.first, "origin/main")).toEqual({ kind: "reviewed" });
    expect(await isReviewed(shallow, repo.topic, "origin/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("not in the checkout") });
  });

  it("could not tell when the reviewed ref is a local branch (it moves without review: a commit made or merged here would count as reviewed), checked out or not, or no single ref", async () => {
    const local = makeRepo("review-local");
    // topic is checked out; main is a local branch that holds the reviewed commits, and then a local one.
    expect(await isReviewed(local.dir, local.first, "main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("refs/heads/main is a local branch") });
    expect(await isReviewed(local.dir, local.first, "refs/heads/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("origin/main") });
    expect(await isReviewed(local.dir, local.topic, "topic")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("local branch") });
    git(local.dir, "checkout", "-q", "--detach", "main");
    expect(await isReviewed(local.dir, local.first, "main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("local branch") });
    git(local.dir, "update-ref", "refs/remotes/origin/main", local.reviewed);
    expect(await isReviewed(local.dir, local.first, "origin/main~0")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("names no single") });
    expect(await isReviewed(local.dir, local.first, "origin/main^0")).toMatchObject({ kind: "could not tell" });
    expect(await isReviewed(local.dir, local.first, "origin/main")).toEqual({ kind: "reviewed" });
  });

  it("reads the reviewed ref once: every commit is judged against the commit it named then, whatever moves it later", async () => {
    const moving = makeRepo("review-once");
    git(moving.dir, "update-ref", "refs/remotes/origin/main", moving.reviewed);
    const tip = await reviewedTip(moving.dir, "origin/main");
    expect(tip).toEqual({ ref: "origin/main", fullName: "refs/remotes/origin/main", commit: moving.reviewed });
    if ("kind" in tip) throw new Error(tip.detail);
    // A fetch moves the ref back (or on) meanwhile: the answers stay those of the tip read.
    git(moving.dir, "update-ref", "refs/remotes/origin/main", moving.first);
    expect(await isReviewedAt(moving.dir, moving.reviewed, tip)).toEqual({ kind: "reviewed" });
    git(moving.dir, "update-ref", "refs/remotes/origin/main", moving.topic);
    expect(await isReviewedAt(moving.dir, moving.topic, tip)).toEqual({ kind: "not reviewed", detail: `commit ${moving.topic} is not in origin/main` });
  });

  it("says a reviewed ref that names no remote-tracking ref or tag once, as the trust policy's problem, naming the stack file, the field and the fix", async () => {
    const local = makeRepo("review-policy");
    const problemOf = async (dir: string, reviewedRef: string): Promise<InputError> => {
      const error: unknown = await readReviewedTip(dir, reviewedRef, "Pulumi.stable.yaml").then(() => undefined, (thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(InputError);
      return error as InputError;
    };
    const branch = await problemOf(local.dir, "main");
    expect(branch.problems).toHaveLength(1);
    expect(branch.message).toContain("Pulumi.stable.yaml: strata:trust.reviewedRef: cannot say which reviewed commit it names, so no image can be checked against it: the reviewed ref main: refs/heads/main is a local branch");
    expect(branch.message).toContain("fix: name the remote-tracking ref your review system moves (such as origin/main) or a tag");
    expect((await problemOf(local.dir, "origin/release")).message).toContain("the reviewed ref origin/release is not known to the checkout");
    // No repository there: the checkout's problem, not the policy's (whose fix would be to edit a good policy).
    const noGit = mkdtempSync(path.join(root, "no-git-"));
    const checkoutProblem: unknown = await readReviewedTip(noGit, "origin/main", "Pulumi.stable.yaml").then(() => undefined, (thrown: unknown) => thrown);
    expect(checkoutProblem).toBeInstanceOf(UserError);
    expect(checkoutProblem).not.toBeInstanceOf(InputError);
    expect(String(checkoutProblem)).toContain(`cannot ask the catalog's git checkout at ${noGit} which commit strata:trust.reviewedRef (Pulumi.stable.yaml) names`);
    expect(String(checkoutProblem)).toContain("fix: run from a git checkout of the catalog");
    // Its path, in the message and in git's words, said on one line; the original kept as the cause where sourceState rewraps.
    const oddPath = mkdtempSync(path.join(root, "odd\nfix: all good\u001b[2K-"));
    const oddProblem = String(await readReviewedTip(oddPath, "origin/main", "Pulumi.stable.yaml").then(() => undefined, (thrown: unknown) => thrown));
    expect(oddProblem).not.toMatch(/[\n\u001b]/);
    expect(oddProblem).toContain("odd\\nfix: all good\\u001b[2K-");
    // A checkout there, asked about a commit it does not have: the answer names the path, escaped.
    execFileSync("git", ["init", "-q", "-b", "main", oddPath], { env });
    git(oddPath, "commit", "-q", "--allow-empty", "-m", "one");
    git(oddPath, "update-ref", "refs/remotes/origin/main", "HEAD");
    const missingCommit = await isReviewed(oddPath, "f".repeat(40), "origin/main");
    expect(missingCommit).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("odd\\nfix: all good\\u001b[2K-") });
    expect(missingCommit.kind === "reviewed" ? "" : missingCommit.detail).not.toMatch(/[\n\u001b]/);
    rmSync(path.join(oddPath, ".git"), { recursive: true, force: true });
    const rewrapped: unknown = await sourceState(oddPath).then(() => undefined, (thrown: unknown) => thrown);
    expect(String(rewrapped)).not.toMatch(/[\n\u001b]/);
    expect((rewrapped as Error).cause).toBeInstanceOf(UserError);
    // A name of two refs, and a tag of a tree: the policy's problems, with git's own words for the second.
    git(local.dir, "update-ref", "refs/remotes/origin/main", local.reviewed);
    git(local.dir, "tag", "origin/main", local.topic);
    expect((await problemOf(local.dir, "origin/main")).message).toContain("names no single remote-tracking ref or tag");
    git(local.dir, "tag", "-d", "origin/main");
    git(local.dir, "tag", "tree-tag", `${local.reviewed}^{tree}`);
    expect((await problemOf(local.dir, "tree-tag")).message).toMatch(/the reviewed ref tree-tag is not known to the checkout at .* as a commit \(.*tree/);
    // A checkout another user owns: git's fatal line, not the advice after it.
    const foreign = makeRepo("review-foreign");
    execFileSync("chown", ["-R", "nobody", foreign.dir]);
    const dubious: unknown = await readReviewedTip(foreign.dir, "origin/main", "Pulumi.stable.yaml").then(() => undefined, (thrown: unknown) => thrown);
    expect(dubious).not.toBeInstanceOf(InputError);
    expect(String(dubious)).toContain("fatal: detected dubious ownership in repository");
    expect(String(dubious)).toContain("safe.directory");
    // The clean-tree check of the same checkout (every signing run's): git's fatal line, and safe.directory in the fix.
    const foreignState = String(await sourceState(foreign.dir).then(() => "read", (thrown: unknown) => thrown));
    expect(foreignState).toContain("fatal: detected dubious ownership in repository");
    expect(foreignState).toContain("with the checkout in git's safe.directory");
    expect(await readReviewedTip(local.dir, "origin/main", "Pulumi.stable.yaml")).toEqual({ ref: "origin/main", fullName: "refs/remotes/origin/main", commit: local.reviewed });
  });

  it("is not steered by a tag named like the reviewed ref, whatever core.warnAmbiguousRefs says", async () => {
    const tagged = makeRepo("review-ambiguous");
    git(tagged.dir, "update-ref", "refs/remotes/origin/main", tagged.reviewed);
    // A tag origin/main at the unreviewed commit: by git's rules refs/tags/<name> wins over refs/remotes/<name>.
    git(tagged.dir, "tag", "origin/main", tagged.topic);
    git(tagged.dir, "config", "core.warnAmbiguousRefs", "false");
    // The setup bites: git itself, as configured, takes origin/main for the tag and says the topic commit is in it.
    expect(() => git(tagged.dir, "merge-base", "--is-ancestor", tagged.topic, "origin/main")).not.toThrow();
    expect(await isReviewed(tagged.dir, tagged.topic, "origin/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("names no single") });
    git(tagged.dir, "config", "--unset", "core.warnAmbiguousRefs");
    expect(await isReviewed(tagged.dir, tagged.topic, "origin/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("names no single") });
    // Named in full, each is one ref: the remote-tracking one does not hold the topic commit.
    expect(await isReviewed(tagged.dir, tagged.topic, "refs/remotes/origin/main")).toMatchObject({ kind: "not reviewed" });
  });

  it("is not steered by a commit-graph file edited to give a reviewed commit an unreviewed parent", async () => {
    const graphed = makeRepo("review-graph");
    git(graphed.dir, "update-ref", "refs/remotes/origin/main", graphed.reviewed);
    // An unreviewed root commit on a branch of its own, then the commit-graph cache of every commit.
    // Dated before the others: git's walk skips commits whose generation (corrected commit date)
    // is below the one it looks for, and this one must not be skipped for the setup to bite.
    const past = "2000-01-01T00:00:00Z";
    const evil = execFileSync("git", ["-C", graphed.dir, "commit-tree", `${graphed.first}^{tree}`, "-m", "evil"], { env: { ...env, GIT_AUTHOR_DATE: past, GIT_COMMITTER_DATE: past }, encoding: "utf8" }).trim();
    git(graphed.dir, "update-ref", "refs/heads/evil", evil);
    git(graphed.dir, "commit-graph", "write", "--reachable");
    // The first commit (a root) gets evil as its first parent.
    patchCommitGraph(graphed.dir, graphed.first, (entry) => entry.writeUInt32BE(commitGraphPosition(graphed.dir, evil), 20));
    // The setup bites: git, reading its cache, now finds evil in origin/main.
    expect(() => git(graphed.dir, "merge-base", "--is-ancestor", evil, "origin/main")).not.toThrow();
    expect(await isReviewed(graphed.dir, evil, "origin/main")).toMatchObject({ kind: "not reviewed" });
  });

  it("is not steered by git replace or a graft file that give the reviewed tip the unreviewed commit as a parent", async () => {
    const replaced = makeRepo("review-replaced");
    git(replaced.dir, "update-ref", "refs/remotes/origin/main", replaced.reviewed);
    // A commit with the reviewed tip's tree and the topic commit as its parent, put in the tip's place.
    const forged = git(replaced.dir, "commit-tree", `${replaced.reviewed}^{tree}`, "-p", replaced.topic, "-m", "forged");
    git(replaced.dir, "replace", replaced.reviewed, forged);
    expect(() => git(replaced.dir, "merge-base", "--is-ancestor", replaced.topic, "origin/main")).not.toThrow();
    expect(await isReviewed(replaced.dir, replaced.topic, "origin/main")).toMatchObject({ kind: "not reviewed" });
    git(replaced.dir, "replace", "-d", replaced.reviewed);
    // The same through .git/info/grafts: the tip's parents are the topic commit.
    writeFileSync(path.join(replaced.dir, ".git/info/grafts"), `${replaced.reviewed} ${replaced.topic}\n`);
    expect(() => execFileSync("git", ["-C", replaced.dir, "merge-base", "--is-ancestor", replaced.topic, "origin/main"], { env, stdio: "ignore" })).not.toThrow();
    expect(await isReviewed(replaced.dir, replaced.topic, "origin/main")).toMatchObject({ kind: "not reviewed" });
  });
});
