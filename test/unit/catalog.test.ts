import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { dockerfileProblems, imageNames, loadCatalog } from "../../src/core/catalog.js";
import { InputError, type Problem } from "../../src/core/problems.js";
import { CHILD_DOCKERFILE, layerYaml, makeCatalog, noteCatalog } from "../helpers/catalog.js";

/** Loads a catalog that must fail; returns its problems. */
function problemsOf(dir: string): Problem[] {
  try {
    loadCatalog(dir, dir);
  } catch (error) {
    if (error instanceof InputError) return [...error.problems];
    throw error;
  }
  throw new Error("the catalog loaded, but problems were expected");
}

describe("image names from the ancestry", () => {
  it("gives exactly the design note's names", () => {
    const catalog = loadCatalog(noteCatalog());
    expect(Object.fromEntries(catalog.layers.map((layer) => [layer.name, layer.image]))).toEqual({
      debian: "debian",
      mos: "debian-mos",
      ms: "debian-mos-ms",
      "keystone-base": "debian-mos-ms-keystone-base",
      keystone: "debian-mos-ms-keystone",
      mysql: "debian-mos-mysql",
    });
  });
  it("skips every dependencies ancestor, not only the parent", () => {
    const names = imageNames([
      { name: "centos", kind: "base" },
      { name: "deps", kind: "dependencies", parent: "centos" },
      { name: "svc", kind: "service", parent: "deps" },
    ]);
    expect(names.get("svc")).toBe("centos-svc");
    expect(names.get("deps")).toBe("centos-deps");
  });
  it("orders layers parents first and keeps versions", () => {
    const catalog = loadCatalog(noteCatalog());
    expect(catalog.layers.map((layer) => layer.name)).toEqual(["debian", "mos", "ms", "keystone-base", "keystone", "mysql"]);
    expect(catalog.layers.find((layer) => layer.name === "keystone")?.version).toEqual({ major: 1, minor: 0, patch: 5 });
  });
});

describe("catalog rules, each with a clear error", () => {
  it("a base layer has no parent", () => {
    const dir = makeCatalog({ root: { yaml: layerYaml("base", "1.0.0"), dockerfile: "FROM scratch\n" }, other: { yaml: layerYaml("base", "1.0.0", "root") } });
    const [problem] = problemsOf(dir);
    expect(problem).toMatchObject({ file: "other/layer.yaml", field: "parent" });
    expect(problem?.message).toMatch(/a base layer has no parent/);
  });
  it("every other layer needs a parent", () => {
    const dir = makeCatalog({ lonely: { yaml: layerYaml("tools", "1.0.0"), dockerfile: CHILD_DOCKERFILE } });
    expect(problemsOf(dir)[0]).toMatchObject({ file: "lonely/layer.yaml", field: "parent", message: "a tools layer needs a parent" });
  });
  it("the parent must exist", () => {
    const dir = makeCatalog({ debian: { yaml: layerYaml("base", "1.0.0") }, mos: { yaml: layerYaml("tools", "1.0.0", "debain") } });
    const [problem] = problemsOf(dir);
    expect(problem).toMatchObject({ file: "mos/layer.yaml", field: "parent", message: 'no layer named "debain"' });
    expect(problem?.fix).toMatch(/debian/);
  });
  it("a child's kind comes strictly later than its parent's (no nova-base → nova-api-base)", () => {
    const dir = makeCatalog({
      debian: { yaml: layerYaml("base", "1.0.0") },
      "nova-base": { yaml: layerYaml("dependencies", "1.0.0", "debian") },
      "nova-api-base": { yaml: layerYaml("dependencies", "1.0.0", "nova-base") },
    });
    const [problem] = problemsOf(dir);
    expect(problem).toMatchObject({ file: "nova-api-base/layer.yaml", field: "kind" });
    expect(problem?.message).toMatch(/cannot sit on "nova-base", a dependencies layer/);
  });
  it("kinds never go back up the order", () => {
    const dir = makeCatalog({ debian: { yaml: layerYaml("base", "1.0.0") }, svc: { yaml: layerYaml("service", "1.0.0", "debian") }, tools: { yaml: layerYaml("tools", "1.0.0", "svc") } });
    expect(problemsOf(dir)).toMatchObject([{ file: "tools/layer.yaml", field: "kind" }]);
  });
  it("a layer may skip kinds (mysql sits on tools)", () => {
    const dir = makeCatalog({ debian: { yaml: layerYaml("base", "1.0.0") }, mos: { yaml: layerYaml("tools", "1.0.0", "debian") }, mysql: { yaml: layerYaml("service", "1.0.0", "mos") } });
    expect(loadCatalog(dir).layers).toHaveLength(3);
  });
  it("parents may not form a cycle", () => {
    const dir = makeCatalog({ a: { yaml: layerYaml("service", "1.0.0", "b") }, b: { yaml: layerYaml("service", "1.0.0", "a") } });
    const problems = problemsOf(dir);
    expect(problems.some((problem) => problem.field === "parent" && /cycle: a → b → a/.test(problem.message))).toBe(true);
  });
  it("image names are unique", () => {
    const dir = makeCatalog({
      a: { yaml: layerYaml("base", "1.0.0") },
      b: { yaml: layerYaml("tools", "1.0.0", "a") },
      "a-b": { yaml: layerYaml("base", "1.0.0") },
    });
    const [problem] = problemsOf(dir);
    expect(problem?.field).toBe("image name");
    expect(problem?.message).toMatch(/image name "a-b" is also the image name of layer/);
  });
  it("layer names must be valid OCI path components", () => {
    const dir = makeCatalog({ Debian: { yaml: layerYaml("base", "1.0.0") }, "my_layer!": { yaml: layerYaml("base", "1.0.0") } });
    const problems = problemsOf(dir).filter((problem) => problem.field === "folder name");
    expect(problems.map((problem) => problem.file)).toEqual(["Debian", "my_layer!"]);
  });
  it("unknown keys are errors, not ignored", () => {
    const dir = makeCatalog({ debian: { yaml: `${layerYaml("base", "1.0.0")}parnet: x\n` } });
    expect(problemsOf(dir)[0]).toMatchObject({ file: "debian/layer.yaml", field: "parnet", message: 'unknown key "parnet"' });
  });
  it("kind must be known and present", () => {
    const dir = makeCatalog({ a: { yaml: "kind: library\nversion: 1.0.0\n" }, b: { yaml: "version: 1.0.0\n" } });
    const problems = problemsOf(dir);
    expect(problems).toMatchObject([{ file: "a/layer.yaml", field: "kind" }, { file: "b/layer.yaml", field: "kind", message: '"kind" is missing' }]);
    expect(problems[0]?.fix).toMatch(/base, tools, common-libs, dependencies, service/);
  });
  it.each(["1.0", "v1.0.0", "1.0.0-rc1", "01.0.0"])("version %s is not MAJOR.MINOR.PATCH", (version) => {
    const dir = makeCatalog({ debian: { yaml: `kind: base\nversion: "${version}"\n` } });
    expect(problemsOf(dir)[0]).toMatchObject({ file: "debian/layer.yaml", field: "version" });
  });
  it.each([
    ["3.0", "3"],
    ["1.50", "1.5"],
    ["1e3", "1000"],
    ["010", "10"],
  ])("an unquoted version %s (a number to YAML) is echoed as written, and says what YAML made of it", (written, read) => {
    const dir = makeCatalog({ debian: { yaml: `kind: base\nversion: ${written}   # the release\n` } });
    expect(problemsOf(dir)).toEqual([{
      file: "debian/layer.yaml", field: "version",
      message: `"version" must be three numbers, not ${written} (YAML reads it as the number ${read})`,
      fix: 'write three plain numbers, for example "version: 1.0.5" (the tag becomes 1.0-p5)',
    }]);
  });
  it("a version that is neither a string nor a number is echoed as written too", () => {
    const dir = makeCatalog({ debian: { yaml: "kind: base\nversion: true\n" } });
    expect(problemsOf(dir)[0]?.message).toBe('"version" must be three numbers, not true');
  });
  it("YAML syntax errors carry line and column", () => {
    const dir = makeCatalog({ debian: { yaml: "kind: base\nversion: [1.0.0\n" } });
    const [problem] = problemsOf(dir);
    expect(problem?.file).toBe("debian/layer.yaml");
    expect(problem?.field).toMatch(/^line \d+, column \d+$/);
    expect(problem?.message).toMatch(/YAML syntax error/);
  });
  it("a layer.yaml that is not a mapping", () => {
    const dir = makeCatalog({ debian: { yaml: "- kind: base\n" } });
    expect(problemsOf(dir)[0]?.message).toMatch(/not a mapping/);
  });
  it("a layer folder needs a layer.yaml and a Dockerfile", () => {
    const dir = makeCatalog({ debian: { yaml: layerYaml("base", "1.0.0"), dockerfile: null } });
    writeFileSync(path.join(dir, "README"), "not a layer");
    expect(problemsOf(dir)).toMatchObject([{ file: "debian/Dockerfile", message: "the layer folder has no Dockerfile" }]);
  });
  it("a non-root Dockerfile must start from BASE_IMAGE", () => {
    const dir = makeCatalog({ debian: { yaml: layerYaml("base", "1.0.0") }, mos: { yaml: layerYaml("tools", "1.0.0", "debian"), dockerfile: "FROM debian:bookworm\nRUN true\n" } });
    const problems = problemsOf(dir);
    expect(problems.map((problem) => problem.field)).toEqual(["line 1", "line 1"]);
    expect(problems[1]?.message).toMatch(/ignores the parent layer/);
  });
  it("an empty catalog is an error", () => {
    expect(problemsOf(makeCatalog({}))[0]?.message).toBe("the catalog is empty");
  });
  it("collects every problem instead of stopping at the first", () => {
    const dir = makeCatalog({
      a: { yaml: "kind: base\nversion: 1.0\nextra: 1\n" },
      b: { yaml: layerYaml("tools", "1.0.0", "nope") },
      c: { yaml: layerYaml("tools", "1.0.0", "a"), dockerfile: "FROM scratch\n" },
    });
    const files = problemsOf(dir).map((problem) => problem.file);
    expect(files).toEqual(expect.arrayContaining(["a/layer.yaml", "c/Dockerfile"]));
    expect(files.length).toBeGreaterThanOrEqual(3);
  });
  it("the error message names file, field and fix", () => {
    const dir = makeCatalog({ debian: { yaml: `${layerYaml("base", "1.0.0")}colour: red\n` } });
    expect(() => loadCatalog(dir, dir)).toThrow(/debian\/layer.yaml: colour: unknown key "colour"\n\s+fix: remove it/);
  });
});

describe("Dockerfile check", () => {
  it("accepts comments, $BASE_IMAGE and a stage name", () => {
    expect(dockerfileProblems("D", "# syntax note\n\nARG BASE_IMAGE\nFROM $BASE_IMAGE AS build\n", false)).toEqual([]);
  });
  it("wants a FROM in a root Dockerfile too", () => {
    expect(dockerfileProblems("D", "RUN true\n", true)[0]?.message).toBe("no FROM instruction");
  });
});
