import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { fileBackendHasStack } from "../../src/engine/cli-run.js";

/** A file backend folder with meta.yaml `version` (none: no meta.yaml) and the given files under .pulumi/stacks. */
function backend(version: string | undefined, files: readonly string[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), "strata-backend-"));
  mkdirSync(path.join(dir, ".pulumi", "stacks"), { recursive: true });
  if (version !== undefined) writeFileSync(path.join(dir, ".pulumi", "meta.yaml"), `version: ${version}\n`);
  for (const file of files) {
    mkdirSync(path.dirname(path.join(dir, ".pulumi", "stacks", file)), { recursive: true });
    writeFileSync(path.join(dir, ".pulumi", "stacks", file), "{}");
  }
  return pathToFileURL(dir).href;
}

describe("fileBackendHasStack: skip `stack select` only when the checkpoint is there", () => {
  it("finds a project-scoped checkpoint, plain or gzipped", () => {
    expect(fileBackendHasStack(backend("1", ["strata/dev.json"]), "strata", "dev")).toBe(true);
    expect(fileBackendHasStack(backend("1", ["strata/dev.json.gz"]), "strata", "dev")).toBe(true);
    expect(fileBackendHasStack(`${backend("1", ["strata/dev.json"])}?no_tmp=1`, "strata", "dev")).toBe(true);
  });
  it("says no for another stack, another project, or only a backup of the checkpoint", () => {
    expect(fileBackendHasStack(backend("1", ["strata/dev.json"]), "strata", "staging")).toBe(false);
    expect(fileBackendHasStack(backend("1", ["other/dev.json"]), "strata", "dev")).toBe(false);
    expect(fileBackendHasStack(backend("1", ["strata/dev.json.bak"]), "strata", "dev")).toBe(false);
    // A project-scoped backend does not look at the legacy place.
    expect(fileBackendHasStack(backend("1", ["dev.json"]), "strata", "dev")).toBe(false);
  });
  it("reads the legacy layout (no meta.yaml, or version 0)", () => {
    expect(fileBackendHasStack(backend(undefined, ["dev.json"]), "strata", "dev")).toBe(true);
    expect(fileBackendHasStack(backend("0", ["dev.json"]), "strata", "dev")).toBe(true);
  });
  it("does not know (so the stack is selected as before) for other backends, qualified names and unknown layouts", () => {
    expect(fileBackendHasStack(undefined, "strata", "dev")).toBe(false);
    expect(fileBackendHasStack("postgres://localhost/pulumi", "strata", "dev")).toBe(false);
    expect(fileBackendHasStack(backend("1", ["strata/dev.json"]), "strata", "organization/strata/dev")).toBe(false);
    expect(fileBackendHasStack(backend("7", ["strata/dev.json", "dev.json"]), "strata", "dev")).toBe(false);
  });
});
