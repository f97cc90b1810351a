/**
 * The catalog checkout's state handed from `strata up` to the program (core/source-handoff.ts), and
 * the program's side (pulumi/image-attestations.ts checkedSource): taken only for the same folder
 * and run, whole; otherwise the program reads git itself.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { handedSourceState, SOURCE_STATE_ENV, sourceStateHandoff } from "../../src/core/source-handoff.js";
import { checkedSource } from "../../src/pulumi/image-attestations.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const clean = { repository: "https://example.org/catalog.git", commit: COMMIT, clean: true };
const dirty = { repository: "file:///srv/catalog", commit: COMMIT, clean: false, difference: "untracked: notes.txt" };

describe("the source state handoff", () => {
  it("gives back what was handed, for the same folder and run", () => {
    expect(handedSourceState(sourceStateHandoff("/srv/catalog", "run-1", clean), "/srv/catalog", "run-1")).toEqual(clean);
    expect(handedSourceState(sourceStateHandoff("/srv/catalog", "run-1", dirty), "/srv/catalog", "run-1")).toEqual(dirty);
  });

  it("is not taken for another folder, another run, or with no run id", () => {
    const value = sourceStateHandoff("/srv/catalog", "run-1", clean);
    expect(handedSourceState(value, "/srv/other", "run-1")).toBeUndefined();
    expect(handedSourceState(value, "/srv/catalog", "run-2")).toBeUndefined();
    expect(handedSourceState(value, "/srv/catalog", undefined)).toBeUndefined();
    expect(handedSourceState(undefined, "/srv/catalog", "run-1")).toBeUndefined();
  });

  it("is not taken when it is not whole or says clean and dirty at once", () => {
    const handed = (fields: Record<string, unknown>): string => JSON.stringify({ catalogDir: "/srv/catalog", runId: "run-1", ...clean, ...fields });
    for (const value of [
      "{not json",
      "[]",
      "null",
      handed({ commit: "abc" }),
      handed({ commit: undefined }),
      handed({ repository: "" }),
      handed({ clean: "true" }),
      handed({ difference: "untracked: x" }),
      handed({ clean: false }),
      handed({ clean: false, difference: "" }),
    ]) {
      expect(handedSourceState(value, "/srv/catalog", "run-1"), value).toBeUndefined();
    }
  });
});

describe("the program's source state (checkedSource)", () => {
  const root = mkdtempSync(path.join(tmpdir(), "strata-handoff-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org", GIT_CONFIG_NOSYSTEM: "1", HOME: root };

  it("takes the handed state without reading git: a folder that is no checkout at all still gets it", async () => {
    const notACheckout = mkdtempSync(path.join(root, "plain-"));
    const handed = { ...process.env, STRATA_RUN_ID: "run-1", [SOURCE_STATE_ENV]: sourceStateHandoff(notACheckout, "run-1", clean) };
    expect(await checkedSource(notACheckout, handed)).toEqual(clean);
  });

  it("reads git itself when the handed state is another run's, and then records what git says", async () => {
    const dir = path.join(root, "repo");
    execFileSync("git", ["init", "-q", dir], { env });
    writeFileSync(path.join(dir, "a.txt"), "1\n");
    execFileSync("git", ["-C", dir, "add", "a.txt"], { env });
    execFileSync("git", ["-C", dir, "commit", "-q", "-m", "one"], { env });
    const head = execFileSync("git", ["-C", dir, "rev-parse", "HEAD"], { env, encoding: "utf8" }).trim();
    const stale = { ...process.env, STRATA_RUN_ID: "run-2", [SOURCE_STATE_ENV]: sourceStateHandoff(dir, "run-1", clean) };
    expect(await checkedSource(dir, stale)).toEqual({ repository: `file://${dir}`, commit: head, clean: true });
    // No checkout and nothing handed for this run: the program's own error, as before the handoff.
    await expect(checkedSource(mkdtempSync(path.join(root, "plain-")), stale)).rejects.toThrow(/cannot tell which git checkout/);
  });
});
