/**
 * The clean-tree check where the checkout cannot be read whole: it says it cannot tell, never
 * "clean". The suite runs as root, whom permissions do not stop, so the faults are made: node:fs's
 * reads fail for chosen paths (a mock), and git on PATH is a wrapper that adds git's own warning for
 * a folder it could not open (git then exits 0).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";

/** Paths whose reads fail with EACCES, as for a user who may not read them. */
const unreadable = new Set<string>();
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>();
  const denied = (where: unknown): boolean => unreadable.has(String(where));
  const refuse = (where: unknown): never => {
    throw Object.assign(new Error(`EACCES: permission denied, '${String(where)}'`), { code: "EACCES" });
  };
  return {
    ...real,
    readdirSync: ((where: unknown, ...rest: unknown[]) => (denied(where) ? refuse(where) : (real.readdirSync as (...args: unknown[]) => unknown)(where, ...rest))) as typeof real.readdirSync,
    lstatSync: ((where: unknown, ...rest: unknown[]) => (denied(where) ? refuse(where) : (real.lstatSync as (...args: unknown[]) => unknown)(where, ...rest))) as typeof real.lstatSync,
  };
});
const { sourceState } = await import("../../src/engine/source-info.js");

const root = mkdtempSync(path.join(tmpdir(), "strata-source-faults-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org", GIT_CONFIG_NOSYSTEM: "1", HOME: root };
const git = (dir: string, ...args: string[]): string => execFileSync("git", ["-C", dir, ...args], { env, encoding: "utf8" }).trim();

/** A committed checkout with a tracked file in `layers/keystone` and `*.o` ignored. */
function checkout(name: string): string {
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, "layers/keystone"), { recursive: true });
  execFileSync("git", ["init", "-q", "-b", "main", dir], { env });
  writeFileSync(path.join(dir, "layers/keystone/Dockerfile"), "FROM scratch\n");
  writeFileSync(path.join(dir, ".gitignore"), "*.o\n");
  git(dir, "add", ".");
  git(dir, "commit", "-q", "-m", "one");
  return dir;
}

const originalPath = process.env.PATH;
const originalLanguage = { LANGUAGE: process.env.LANGUAGE, LC_ALL: process.env.LC_ALL };
afterEach(() => {
  unreadable.clear();
  process.env.PATH = originalPath;
  for (const [name, value] of Object.entries(originalLanguage)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe("the clean-tree check where the checkout cannot be read whole", () => {
  it("cannot tell when a folder of ignored files cannot be read (it might hold an empty folder or a .git)", async () => {
    const dir = checkout("unreadable-folder");
    mkdirSync(path.join(dir, "out"));
    writeFileSync(path.join(dir, "out/a.o"), "made\n");
    expect(await sourceState(dir)).toMatchObject({ clean: true });
    unreadable.add(path.join(dir, "out/"));
    await expect(sourceState(dir)).rejects.toThrow(`cannot tell whether the git checkout ${dir} is clean (reading the folder out/: EACCES`);
  });

  it("cannot tell when a folder holding tracked files, or a tracked file, cannot be looked at", async () => {
    const dir = checkout("unreadable-tracked");
    unreadable.add(path.join(dir, "layers/keystone/.git"));
    await expect(sourceState(dir)).rejects.toThrow(`cannot tell whether the git checkout ${dir} is clean (reading layers/keystone/.git: EACCES`);
    unreadable.clear();
    unreadable.add(path.join(dir, "layers/keystone/Dockerfile"));
    await expect(sourceState(dir)).rejects.toThrow(`cannot tell whether the git checkout ${dir} is clean (reading layers/keystone/Dockerfile: EACCES`);
  });

  it("cannot tell when git could not open a folder while listing untracked files (a warning, exit 0, to git)", async () => {
    const dir = checkout("git-could-not-open");
    const wrapper = path.join(root, "bin");
    mkdirSync(wrapper, { recursive: true });
    const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
    // git as it answers for a folder it may not read: its listing, and the warning on stderr, in
    // the listings git 2.39 warns in (not the one of every untracked folder), in the language of
    // git's own messages for the locale the wrapper runs in (gettext, git's catalogue).
    writeFileSync(path.join(wrapper, "git"), `#!/bin/sh\ncase " $* " in *" --no-empty-directory "*|*" --ignored "*) "${realGit}" "$@"; code=$?; printf "%s$(TEXTDOMAIN=git gettext "could not open directory '%s'"): %s\\n" "$(TEXTDOMAIN=git gettext "warning: ")" "layers/secret/" "Permission denied" >&2; exit $code ;; esac\nexec "${realGit}" "$@"\n`);
    chmodSync(path.join(wrapper, "git"), 0o755);
    expect(await sourceState(dir)).toMatchObject({ clean: true });
    process.env.PATH = `${wrapper}:${originalPath ?? ""}`;
    // A caller whose messages are German: git's are still read in English (the check runs git with LC_ALL=C).
    process.env.LANGUAGE = "de";
    process.env.LC_ALL = "C.UTF-8";
    await expect(sourceState(dir)).rejects.toThrow(`cannot tell whether the git checkout ${dir} is clean (git ls-files --others: warning: could not open directory 'layers/secret/': Permission denied)`);
  });

  it("says the last folder git could not open in whichever listing warns, named as it is spelled, and that git did not finish a listing it was stopped in", async () => {
    const dir = checkout("git-could-not-open-ignored");
    const wrapper = path.join(root, "bin-ignored");
    mkdirSync(wrapper, { recursive: true });
    const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
    // Only the listing of ignored files warns, twice; the last folder's name is not ASCII. Then the same listing is stopped by a signal after warning.
    const warn = (folder: string): string => `printf "warning: could not open directory '%s': Permission denied\\n" "${folder}" >&2`;
    const script = (after: string): string => `#!/bin/sh\ncase " $* " in *" --ignored "*) "${realGit}" "$@"; code=$?; ${warn("out/a/")}; ${warn("out/zé/")}; ${after} ;; esac\nexec "${realGit}" "$@"\n`;
    writeFileSync(path.join(wrapper, "git"), script("exit $code"));
    chmodSync(path.join(wrapper, "git"), 0o755);
    process.env.PATH = `${wrapper}:${originalPath ?? ""}`;
    await expect(sourceState(dir)).rejects.toThrow(`cannot tell whether the git checkout ${dir} is clean (git ls-files --ignored: warning: could not open directory 'out/zé/': Permission denied)`);
    writeFileSync(path.join(wrapper, "git"), script("kill -KILL $$"));
    const stopped = await sourceState(dir).then(() => "clean", (error: unknown) => String(error));
    expect(stopped).toContain(`cannot tell whether the git checkout ${dir} is clean (git ls-files --ignored: Command failed: git -C ${dir}`);
    // A folder whose name holds an escape code: said escaped, on one line.
    writeFileSync(path.join(wrapper, "git"), `#!/bin/sh\ncase " $* " in *" --ignored "*) "${realGit}" "$@"; code=$?; ${warn("$(printf 'out/\\033[2K/')")}; exit $code ;; esac\nexec "${realGit}" "$@"\n`);
    await expect(sourceState(dir)).rejects.toThrow(`cannot tell whether the git checkout ${dir} is clean (git ls-files --ignored: warning: could not open directory 'out/\\u001b[2K/': Permission denied)`);
  });
});
