import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/commands.js";
import { layerYaml, makeCatalog, scratchDir } from "../helpers/catalog.js";

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function strata(args: string[], env: Record<string, string> = {}, cwd = projectDir) {
  let out = "";
  let err = "";
  const code = await runCli(args, { out: (text) => (out += text), err: (text) => (err += text), env, cwd });
  return { code, out, err };
}

describe("strata tags", () => {
  it("prints the design note's names and tags for the sample catalog on dev", async () => {
    const { code, out } = await strata(["tags", "--stack", "dev", "--json"]);
    expect(code).toBe(0);
    const rows = JSON.parse(out) as { layer: string; image: string; tag: string; ref: string; parent: string | null }[];
    expect(rows.map((row) => [row.layer, row.image, row.tag, row.parent])).toEqual([
      ["debian", "debian", "1.0-p0", null],
      ["mos", "debian-mos", "1.0-p0", "debian"],
      ["ms", "debian-mos-ms", "1.0-p0", "mos"],
      ["keystone-base", "debian-mos-ms-keystone-base", "1.0-p0", "ms"],
      ["keystone", "debian-mos-ms-keystone", "1.0-p5", "keystone-base"],
      ["mysql", "debian-mos-mysql", "1.0-p0", "mos"],
    ]);
    expect(rows.find((row) => row.layer === "keystone")?.ref).toBe("127.0.0.1:5000/debian12-mos9.0-dev/debian-mos-ms-keystone:1.0-p5");
  });
  it("prints a table, and CI tags from the Gerrit environment", async () => {
    const { code, out } = await strata(["tags", "--stack", "stable"], { GERRIT_CHANGE_NUMBER: "19026", GERRIT_PATCHSET_NUMBER: "2" });
    expect(code).toBe(0);
    expect(out.split("\n")[0]).toMatch(/^layer\s+image\s+tag\s+ref\s+parent$/);
    expect(out).toContain("127.0.0.1:5000/debian12-mos9.0-stable/debian-mos-ms-keystone:1.0-p5-19026_2");
  });
  it("reports the catalog's problems and the stack config's in one list (as plan and up do), not one after the other", async () => {
    const corpusCase = path.join(projectDir, "test/corpus/bad/44-config-problems-behind-each-other");
    const { code, out, err } = await strata(["tags", "--stack", "given", "--catalog", "catalog", "--config", "stack.yaml", "--project", "."], {}, corpusCase);
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err.split("\n")[0]).toBe("7 problems in the Strata input (nothing was built or pushed):");
    expect(err).toMatch(/catalog\/mysql\/Dockerfile: line 2: .*ignores the parent layer/);
    expect(err).toMatch(/stack.yaml: strata:registry: "http:\/\/registry:5000" is not host\[:port\]/);
  });
  it("runs on another catalog and config file", async () => {
    const catalog = makeCatalog({ centos: { yaml: layerYaml("base", "2.1.3") } });
    const configFile = path.join(scratchDir("config"), "stack.yaml");
    writeFileSync(configFile, "config:\n  strata:registry: registry.local:443\n  strata:osRelease: centos7\n  strata:channel: qa\n");
    const { code, out } = await strata(["tags", "--stack", "x", "--catalog", catalog, "--config", configFile, "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual([{ layer: "centos", kind: "base", image: "centos", tag: "2.1-p3", ref: "registry.local:443/centos7-mos9.0-qa/centos:2.1-p3", parent: null }]);
  });
  it("fails with every config problem named", async () => {
    const configFile = path.join(scratchDir("config"), "bad.yaml");
    writeFileSync(configFile, "config:\n  strata:registry: http://x\n  strata:patchset: 2\n");
    const { code, err } = await strata(["tags", "--stack", "x", "--config", configFile]);
    expect(code).toBe(1);
    expect(err).toMatch(/bad.yaml: strata:registry/);
    expect(err).toMatch(/bad.yaml: strata:patchset: a patchset is given without a change/);
    expect(err).toMatch(/nothing was built or pushed/);
  });
});

describe("strata validate and tree", () => {
  it("validates the sample catalog and all stacks", async () => {
    const { code, out } = await strata(["validate"]);
    expect(code).toBe(0);
    expect(out).toBe("ok: 6 layers, stacks checked: dev, stable, staging\n");
  });
  it("lists all problems and exits non-zero", async () => {
    const catalog = makeCatalog({ a: { yaml: "kind: base\nversion: 1.0\n" }, b: { yaml: layerYaml("tools", "1.0.0", "zzz") } });
    const { code, err } = await strata(["validate", "--catalog", catalog], {}, catalog);
    expect(code).toBe(1);
    expect(err).toMatch(/2 problems/);
    expect(err).toMatch(/a\/layer.yaml: version/);
    expect(err).toMatch(/b\/layer.yaml: parent: no layer named "zzz"/);
  });
  it("prints the tree with kinds and versions", async () => {
    const { code, out } = await strata(["tree"]);
    expect(code).toBe(0);
    expect(out.split("\n").slice(0, 6)).toEqual([
      "debian [base] 1.0.0 (tag 1.0-p0) → debian",
      "└─ mos [tools] 1.0.0 (tag 1.0-p0) → debian-mos",
      "   └─ ms [common-libs] 1.0.0 (tag 1.0-p0) → debian-mos-ms",
      "      └─ keystone-base [dependencies] 1.0.0 (tag 1.0-p0) → debian-mos-ms-keystone-base",
      "         └─ keystone [service] 1.0.5 (tag 1.0-p5) → debian-mos-ms-keystone",
      "   └─ mysql [service] 1.0.0 (tag 1.0-p0) → debian-mos-mysql",
    ]);
  });
  it("rejects unknown commands with a usage exit code", async () => {
    expect((await strata(["frobnicate"])).code).toBe(2);
  });
});

describe("strata ci-clean's options", () => {
  it("refuses a --wait that is not whole seconds, before anything is read, naming the option and the fix", async () => {
    for (const wait of ["soon", "-5", "1.5"]) {
      const { code, err } = await strata(["ci-clean", "--stack", "dev", "--change", "19026", "--wait", wait]);
      expect(code, wait).toBe(1);
      expect(err).toMatch(new RegExp(`command line: --wait: "${wait.replace(".", "\\.")}" is not a whole number of seconds.*--wait 1800`, "s"));
    }
  });
});
