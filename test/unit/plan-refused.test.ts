/**
 * `strata plan` on a promoting channel (issue 29, item 7): what the promotion would copy, and which
 * images its trust policy refuses and why, from the promotion gate's `refused: ` warnings in the
 * preview. A refusal refuses the whole promotion: the plan exits non-zero, as a blocked plan does.
 */
import { describe, expect, it } from "vitest";
import { type EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { planPromotion, type SourceLayer } from "../../src/core/promotion-plan.js";
import { eventCollector } from "../../src/engine/events.js";
import { planExitCode, promotionRows, renderPlanJson, renderPlanMarkdown, renderPlanText } from "../../src/cli/plan-status.js";

const hex = (char: string): string => char.repeat(64);
function config(): StackConfig {
  const { config: resolved } = resolveStackConfig({ values: { registry: "127.0.0.1:5000", osRelease: "debian12", productVersion: "mos9.0", channel: "stable", promoteFrom: "staging", immutable: true }, file: "Pulumi.stable.yaml", env: {} });
  if (resolved === undefined) throw new Error("config");
  return resolved;
}
const source = (layer: string, parent: string | null, char: string): SourceLayer => ({
  layer, kind: "image", image: `img-${layer}`, tag: "1.0-p0", ref: `127.0.0.1:5000/debian12-mos9.0-staging/img-${layer}:1.0-p0`,
  digestRef: `127.0.0.1:5000/debian12-mos9.0-staging/img-${layer}@sha256:${hex(char)}`, parent,
});
const { targets } = planPromotion({ base: source("base", null, "a"), app: source("app", "base", "b"), tools: source("tools", "base", "c") }, config(), "Pulumi.stable.yaml");
const refusal = (layer: string, char: string, what: string): string =>
  `layer ${layer}: 127.0.0.1:5000/debian12-mos9.0-staging/img-${layer}@sha256:${hex(char)} is refused: ${what}; fix: sign it with the CI key on the source channel`;

describe("a promoting channel's plan", () => {
  it("says promote or unchanged per layer when nothing is refused, and exits 0", () => {
    const rows = promotionRows({ targets, platformDigests: new Map(), previous: {}, operations: new Map([["base", "same"], ["app", "create"], ["tools", "update"]]), refusals: [] });
    expect(rows.map((row) => [row.layer, row.status])).toEqual([["app", "promote"], ["base", "unchanged"], ["tools", "promote"]]);
    expect(rows.find((row) => row.layer === "app")?.reason).toBe(`copies ${source("app", "base", "b").digestRef}`);
    expect(planExitCode(rows)).toBe(0);
  });

  it("marks each refused image's layer refused with the gate's paragraph, every other layer blocked, and exits 1", () => {
    const paragraph = refusal("app", "b", "it is signed, but by no key strata:trust names");
    const rows = promotionRows({ targets, platformDigests: new Map(), previous: {}, operations: new Map([["base", "create"], ["app", "create"], ["tools", "create"]]), refusals: [paragraph] });
    expect(rows.map((row) => [row.layer, row.status])).toEqual([["app", "refused"], ["base", "blocked"], ["tools", "blocked"]]);
    expect(rows.find((row) => row.layer === "app")?.reason).toBe(paragraph);
    expect(rows.find((row) => row.layer === "base")?.reason).toBe("the promotion is refused as a whole (1 image refused): nothing would be copied");
    expect(planExitCode(rows)).toBe(1);
    const text = renderPlanText(rows, "stable");
    expect(text).toContain("app  refused: see below  img-app - → 1.0-p0");
    expect(text).toContain(`refused by the channel's trust policy (strata:trust): nothing would be promoted\napp: ${paragraph}`);
    expect(text).toContain("2 blocked, 1 refused");
    expect(JSON.parse(renderPlanJson(rows))).toContainEqual(expect.objectContaining({ layer: "app", status: "refused", reason: paragraph }));
    expect(renderPlanMarkdown(rows, "stable")).toContain(`| refused: ${paragraph} |`);
  });

  it("places a refusal of a platform image on its multi-platform layer, and one naming no image of the plan on none, still refusing", () => {
    const platform = refusal("tools", "d", "no SBOM attestation");
    const rows = promotionRows({ targets, platformDigests: new Map([["tools", [`127.0.0.1:5000/debian12-mos9.0-staging/img-tools@sha256:${hex("d")}`]]]), previous: {}, operations: new Map(), refusals: [platform] });
    expect(rows.find((row) => row.layer === "tools")?.status).toBe("refused");
    const stray = refusal("gone", "e", "cosign timed out");
    const strayRows = promotionRows({ targets, platformDigests: new Map(), previous: {}, operations: new Map(), refusals: [stray] });
    expect(new Set(strayRows.map((row) => row.status))).toEqual(new Set(["blocked"]));
    expect(strayRows[0]?.reason).toContain(stray);
    expect(planExitCode(strayRows)).toBe(1);
  });

  it("places a child's refusal that names its refused parent on the child's row only (review 133)", () => {
    const base = refusal("base", "a", "it has no signature");
    const app = refusal("app", "b", `it was built on 127.0.0.1:5000/debian12-mos9.0-dev/img-base@sha256:${hex("a")}, which is refused here`);
    const rows = promotionRows({ targets, platformDigests: new Map(), previous: {}, operations: new Map(), refusals: [base, app] });
    expect(rows.map((row) => [row.layer, row.status, row.reason])).toEqual([["app", "refused", app], ["base", "refused", base], ["tools", "blocked", "the promotion is refused as a whole (2 images refused): nothing would be copied"]]);
  });

  it("reads the program's refused: warnings from the preview's events, not a layer's own warnings", () => {
    const { programWarnings, onEvent } = eventCollector();
    const warn = (urn: string | undefined, message: string): EngineEvent => ({ sequence: 0, timestamp: 0, diagnosticEvent: { ...(urn === undefined ? {} : { urn }), severity: "warning", message, color: "never" } } as unknown as EngineEvent);
    onEvent(warn("urn:pulumi:stable::strata::pulumi:pulumi:Stack::strata-stable", `refused: ${refusal("app", "b", "unsigned")}\n`));
    onEvent(warn(undefined, "blocked: a tag would move"));
    onEvent(warn("urn:pulumi:stable::strata::strata:index:Promotion$strata:index:PromotedImage::app", "refused: not the program's"));
    expect(programWarnings).toEqual([`refused: ${refusal("app", "b", "unsigned")}`, "blocked: a tag would move"]);
  });
});
