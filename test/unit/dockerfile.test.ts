import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { labelledDockerfile, writeLabelledDockerfile } from "../../src/pulumi/dockerfile.js";
import { scratchDir } from "../helpers/catalog.js";
import { writeFileSync } from "node:fs";

describe("the Dockerfile a layer is built from", () => {
  it("is the catalog's own with the org.strata.* label lines appended in the final stage", () => {
    const original = "FROM scratch AS first\nRUN true\nFROM scratch\nCOPY --from=first / /";
    const labelled = labelledDockerfile(original);
    expect(labelled.startsWith(`${original}\n`)).toBe(true);
    expect(labelled.slice(original.length + 1).split("\n").filter((line) => !line.startsWith("#") && line !== "")).toEqual([
      "ARG STRATA_FINGERPRINT",
      "ARG STRATA_INPUTS",
      'LABEL org.strata.fingerprint="${STRATA_FINGERPRINT}" org.strata.inputs="${STRATA_INPUTS}"',
    ]);
  });

  it("is written under the project by content, at a relative path that moves only with the content", () => {
    const projectDir = scratchDir("project");
    const source = path.join(scratchDir("layer"), "Dockerfile");
    writeFileSync(source, "FROM scratch\n");
    const first = writeLabelledDockerfile("base", source, projectDir);
    expect(writeLabelledDockerfile("base", source, projectDir)).toBe(first);
    expect(path.isAbsolute(first)).toBe(false);
    expect(readFileSync(path.join(projectDir, first), "utf8")).toBe(labelledDockerfile("FROM scratch\n"));
    writeFileSync(source, "FROM scratch\nRUN true\n");
    expect(writeLabelledDockerfile("base", source, projectDir)).not.toBe(first);
  });

  it("is not written again when it is there, unless its bytes were changed by hand", () => {
    const projectDir = scratchDir("project");
    const source = path.join(scratchDir("layer"), "Dockerfile");
    writeFileSync(source, "FROM scratch\n");
    const written = path.join(projectDir, writeLabelledDockerfile("base", source, projectDir));
    const inode = statSync(written).ino;
    writeLabelledDockerfile("base", source, projectDir);
    // Written aside and renamed, a file written again would be another inode.
    expect(statSync(written).ino).toBe(inode);
    writeFileSync(written, "FROM scratch\nRUN echo not what the fingerprint says\n");
    writeLabelledDockerfile("base", source, projectDir);
    expect(readFileSync(written, "utf8")).toBe(labelledDockerfile("FROM scratch\n"));
  });
});
