import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { writeFileWhole } from "../../src/core/files.js";
import { scratchDir } from "../helpers/catalog.js";

describe("a file written whole", () => {
  it("replaces the file, and leaves nothing beside it", () => {
    const dir = scratchDir("whole");
    const file = path.join(dir, "record.json");
    writeFileSync(file, "old\n");
    const before = statSync(file).ino;
    writeFileWhole(file, "new\n");
    expect(readFileSync(file, "utf8")).toBe("new\n");
    // Renamed over it, not written into it: a reader holding the old file still reads the old bytes.
    expect(statSync(file).ino).not.toBe(before);
    expect(readdirSync(dir)).toEqual(["record.json"]);
  });

  it("throws when it cannot be put in place, and leaves no temporary file", () => {
    const dir = scratchDir("whole");
    const target = path.join(dir, "taken");
    mkdirSync(target);
    writeFileSync(path.join(target, "inside"), "");
    expect(() => writeFileWhole(target, "bytes")).toThrow();
    expect(readdirSync(dir)).toEqual(["taken"]);
  });
});
