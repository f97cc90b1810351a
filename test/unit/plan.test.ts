import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/core/catalog.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { planTargets } from "../../src/core/plan.js";
import { InputError } from "../../src/core/problems.js";
import { layerYaml, makeCatalog, noteCatalog } from "../helpers/catalog.js";

function config(values: Record<string, unknown> = {}, env: Record<string, string> = {}): StackConfig {
  const resolved = resolveStackConfig({
    values: { registry: "1.1.1.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable", ...values },
    file: "Pulumi.stable.yaml",
    env,
  });
  if (resolved.config === undefined) throw new InputError(resolved.problems);
  return resolved.config;
}

describe("targets under the version policy", () => {
  const catalog = loadCatalog(noteCatalog());
  it("gives the design note's full reference for keystone", () => {
    const keystone = planTargets(catalog, config(), "Pulumi.stable.yaml").find((target) => target.layer.name === "keystone");
    expect(keystone).toMatchObject({
      tag: "1.0-p5",
      ref: "1.1.1.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone:1.0-p5",
      repository: "1.1.1.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone",
      parent: "keystone-base",
    });
  });
  it("appends the Gerrit change and patchset in CI", () => {
    const targets = planTargets(catalog, config({}, { GERRIT_CHANGE_NUMBER: "19026", GERRIT_PATCHSET_NUMBER: "2" }), "f");
    expect(targets.map((target) => target.tag)).toEqual(["1.0-p0-19026_2", "1.0-p0-19026_2", "1.0-p0-19026_2", "1.0-p0-19026_2", "1.0-p5-19026_2", "1.0-p0-19026_2"]);
  });
  it("selects layers with their ancestors only", () => {
    expect(planTargets(catalog, config({ layers: ["mysql"] }), "f").map((target) => target.layer.name)).toEqual(["debian", "mos", "mysql"]);
  });
  it("rejects a selection naming an unknown layer", () => {
    expect(() => planTargets(catalog, config({ layers: ["keystone", "nova"] }), "Pulumi.stable.yaml")).toThrow(/Pulumi.stable.yaml: strata:layers: no layer named "nova"/);
  });
  it("validates the whole reference, including the 255-character name limit", () => {
    const longName = "a".repeat(240);
    const long = loadCatalog(makeCatalog({ [longName]: { yaml: layerYaml("base", "1.0.0") } }));
    expect(() => planTargets(long, config(), "Pulumi.stable.yaml")).toThrow(/over the limit of 255/);
  });
});
