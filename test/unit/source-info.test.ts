import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isReviewed, publishableRemote, sourceState } from "../../src/engine/source-info.js";

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

describe("source state", () => {
  const repo = makeRepo("repo");

  it("names the folder when there is no origin, HEAD's commit, and a clean tree", async () => {
    expect(await sourceState(repo.dir)).toEqual({ repository: `file://${repo.dir}`, commit: repo.topic, clean: true });
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

  it("is reviewed when the reviewed ref contains the commit, its tip included", async () => {
    expect(await isReviewed(repo.dir, repo.first, "main")).toEqual({ kind: "reviewed" });
    expect(await isReviewed(repo.dir, repo.reviewed, "main")).toEqual({ kind: "reviewed" });
  });

  it("is not reviewed when the ref does not contain it", async () => {
    expect(await isReviewed(repo.dir, repo.topic, "main")).toMatchObject({ kind: "not reviewed" });
  });

  it("could not tell for an unknown ref, an unknown commit, a bad id or a folder with no repository; never reviewed", async () => {
    expect(await isReviewed(repo.dir, repo.first, "origin/main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("git fetch") });
    expect(await isReviewed(repo.dir, "f".repeat(40), "main")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("not in the checkout") });
    expect(await isReviewed(repo.dir, "--all", "main")).toMatchObject({ kind: "could not tell" });
    expect(await isReviewed(repo.dir, repo.first, "--all")).toMatchObject({ kind: "could not tell" });
    expect(await isReviewed(mkdtempSync(path.join(root, "none-")), repo.first, "main")).toMatchObject({ kind: "could not tell" });
  });

  it("could not tell when the reviewed ref is the branch checked out (a commit made here would count as reviewed); a detached checkout of it is fine", async () => {
    const onMain = makeRepo("review-on-main");
    git(onMain.dir, "checkout", "-q", "main");
    const answer = await isReviewed(onMain.dir, onMain.first, "main");
    expect(answer).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("is the branch checked out") });
    expect(await isReviewed(onMain.dir, onMain.first, "refs/heads/main")).toMatchObject({ kind: "could not tell" });
    expect(await isReviewed(onMain.dir, onMain.first, "main~0")).toMatchObject({ kind: "could not tell", detail: expect.stringContaining("names no single branch or tag") });
    expect(await isReviewed(onMain.dir, onMain.first, "main^0")).toMatchObject({ kind: "could not tell" });
    git(onMain.dir, "checkout", "-q", "--detach", "main");
    expect(await isReviewed(onMain.dir, onMain.first, "main")).toEqual({ kind: "reviewed" });
  });
});
