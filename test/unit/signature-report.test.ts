/**
 * Signatures in the run report (issue 29, item 7): the engine's ImageAttestationsSet step reduced to
 * each layer's signature (signed in this run, signed before, not signed and why), its package count
 * and its SBOM's `.att` tag, through the summary's rows into the report's data and page.
 */
import { describe, expect, it } from "vitest";
import { type EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { IMAGE_INDEX_TYPE } from "../../src/core/image-types.js";
import { eventCollector } from "../../src/engine/events.js";
import { renderSummary, type SummaryLayer, summaryRows } from "../../src/cli/summary.js";
import { registryManifestUrl, renderReport, reportData } from "../../src/cli/report.js";

const IMAGE = "docker:index/image:Image";
const ATTESTATIONS = "strata:index:ImageAttestationsSet";
const urn = (type: string, name: string): string => `urn:pulumi:dev::strata::strata:index:LayerTree$${type}::${name}`;
const pre = (type: string, name: string, op: string): EngineEvent => ({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op, urn: urn(type, name), type } } } as unknown as EngineEvent);
const outputs = (type: string, name: string, op: string, values: Record<string, unknown>): EngineEvent => ({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: { op, urn: urn(type, name), type, new: { outputs: values } } } } as unknown as EngineEvent);
const failed = (type: string, name: string, op: string): EngineEvent => ({ sequence: 0, timestamp: 0, resOpFailedEvent: { metadata: { op, urn: urn(type, name), type } } } as unknown as EngineEvent);

const hex = (char: string): string => char.repeat(64);
type Attested = Record<string, Record<string, unknown>>;
/** The set's step: its inputs name each image's digest; its state before (`old`) says what it had signed. */
const setPre = (op: string, images: Record<string, string>, old: Attested = {}, set = "attestations-0"): EngineEvent => ({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op, urn: urn(ATTESTATIONS, set), type: ATTESTATIONS, old: { outputs: { attested: old } }, new: { inputs: { images: Object.fromEntries(Object.entries(images).map(([name, ref]) => [name, { digestRef: ref }])) } } } } } as unknown as EngineEvent);
const setOutputs = (op: string, attested: Attested, old: Attested = {}, set = "attestations-0"): EngineEvent => ({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: { op, urn: urn(ATTESTATIONS, set), type: ATTESTATIONS, old: { outputs: { attested: old } }, new: { outputs: { registry: "127.0.0.1:5000", attested } } } } } as unknown as EngineEvent);
const digestRef = (layer: string, char: string): string => `127.0.0.1:5000/g/img-${layer}@sha256:${hex(char)}`;
const tagOf = (layer: string, char: string, suffix: "sig" | "att"): string => `127.0.0.1:5000/g/img-${layer}:sha256-${hex(char)}.${suffix}`;
const attested = (layer: string, char: string, packages: number, signedBefore: boolean): Record<string, unknown> => ({
  digestRef: digestRef(layer, char), signature: tagOf(layer, char, "sig"), sbom: tagOf(layer, char, "att"), provenance: tagOf(layer, char, "att"), packages, sbomAttestationDigest: "sha256:x", provenanceAttestationDigest: "sha256:y", signedBefore,
});
const layer = (name: string, parent: string | null, sign: boolean): SummaryLayer => ({ layer: name, image: `img-${name}`, ref: `127.0.0.1:5000/g/img-${name}:1.0-p0`, parent, signing: sign ? { sign: true } : { sign: false, reason: "no strata:signingKey" } });

describe("the attestation set's step in the engine's events", () => {
  it("joins each image of the set to its layer: tags, package count, signed in this run or before, whether the .sig was there before", () => {
    const { events, onEvent } = eventCollector();
    const before = { base: attested("base", "a", 3, false), app: attested("app", "0", 5, false) };
    const after = { base: before.base, app: attested("app", "b", 5, false), db: attested("db", "c", 4, true) };
    for (const event of [
      pre(IMAGE, "base", "same"), outputs(IMAGE, "base", "same", { repoDigest: digestRef("base", "a") }),
      pre(IMAGE, "app", "update"), outputs(IMAGE, "app", "update", { repoDigest: digestRef("app", "b") }),
      pre(IMAGE, "db", "create"), outputs(IMAGE, "db", "create", { repoDigest: digestRef("db", "c") }),
      setPre("update", { base: digestRef("base", "a"), app: digestRef("app", "b"), db: digestRef("db", "c") }, before),
      setOutputs("update", after, before),
    ]) onEvent(event);
    expect(events.get("base")?.attestation).toEqual({ op: "same", failed: false, signature: tagOf("base", "a", "sig"), sbom: tagOf("base", "a", "att"), provenance: tagOf("base", "a", "att"), packages: 3 });
    expect(events.get("app")?.attestation).toMatchObject({ op: "create", packages: 5, signedBefore: false, signature: tagOf("app", "b", "sig") });
    expect(events.get("db")?.attestation).toMatchObject({ op: "create", signedBefore: true });
    // The image's own story is untouched.
    expect(events.get("app")).toMatchObject({ type: IMAGE, op: "update", digestRef: digestRef("app", "b"), failed: false });
    // The set itself is no layer.
    expect(events.has("attestations-0")).toBe(false);
  });

  it("says which images the step will sign before it ends (a preview), from its inputs and its state", () => {
    const { events, onEvent } = eventCollector();
    onEvent(pre(IMAGE, "base", "same"));
    onEvent(pre(IMAGE, "app", "update"));
    onEvent(setPre("update", { base: digestRef("base", "a"), app: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" }, { base: attested("base", "a", 3, false), app: attested("app", "0", 5, false) }));
    expect(events.get("base")?.attestation).toEqual({ op: "same", failed: false });
    expect(events.get("app")?.attestation).toEqual({ op: "create", failed: false });
  });

  it("never makes a layer the run did not reach look reached, and joins an early attestation once the image's step comes", () => {
    const { events, onEvent } = eventCollector();
    onEvent(setPre("same", { late: digestRef("late", "d"), lost: digestRef("lost", "e") }, { late: attested("late", "d", 1, false), lost: attested("lost", "e", 1, false) }));
    onEvent(setOutputs("same", { late: attested("late", "d", 1, false), lost: attested("lost", "e", 1, false), "tools/linux-arm64": attested("tools", "f", 0, false) }, { late: attested("late", "d", 1, false), lost: attested("lost", "e", 1, false), "tools/linux-arm64": attested("tools", "f", 0, false) }));
    expect(events.has("lost")).toBe(false);
    onEvent(pre(IMAGE, "late", "same"));
    expect(events.get("late")).toMatchObject({ type: IMAGE, op: "same", attestation: { op: "same", packages: 1 } });
    // A platform's image in its index's repository is not a layer of its own.
    expect(events.has("tools/linux-arm64")).toBe(false);
  });

  it("marks the images of a failed set's step failed, not another set's", () => {
    const { events, onEvent } = eventCollector();
    for (const name of ["base", "app"]) onEvent(pre(IMAGE, name, "create"));
    onEvent(setPre("create", { base: digestRef("base", "a") }, {}, "attestations-0"));
    onEvent(setOutputs("create", { base: attested("base", "a", 3, false) }, {}, "attestations-0"));
    onEvent(setPre("create", { app: digestRef("app", "b") }, {}, "attestations-1"));
    onEvent(failed(ATTESTATIONS, "attestations-1", "create"));
    expect(events.get("base")?.attestation).toMatchObject({ op: "create", failed: false, packages: 3 });
    expect(events.get("app")?.attestation).toMatchObject({ op: "create", failed: true });
  });

  it("marks every image of a failed step failed, and the summary then claims no signature for any", () => {
    const { events, onEvent } = eventCollector();
    for (const name of ["base", "app"]) {
      onEvent(pre(IMAGE, name, "create"));
      onEvent(outputs(IMAGE, name, "create", { repoDigest: digestRef(name, name === "app" ? "b" : "a") }));
    }
    // base was signed by an earlier run under the same digest; the step fails on app.
    onEvent(setPre("update", { base: digestRef("base", "a"), app: digestRef("app", "b") }, { base: attested("base", "a", 3, false) }));
    onEvent(failed(ATTESTATIONS, "attestations-0", "update"));
    expect(events.get("app")?.attestation).toMatchObject({ op: "create", failed: true });
    expect(events.get("base")?.attestation).toMatchObject({ failed: true });
    expect(events.get("app")?.failed).toBe(false);
    const rows = summaryRows([layer("base", null, true), layer("app", "base", true)], events);
    expect(rows.map((row) => [row.signature, row.unsigned])).toEqual([
      [undefined, "the run did not finish: its signatures are not known"],
      [undefined, "the run did not finish: its signatures are not known"],
    ]);
  });

  it("tells a multi-platform layer by its index and its platform images together: signed before only when nothing was written for any", () => {
    const platforms = ["tools/linux-amd64", "tools/linux-arm64"] as const;
    /** One run: the index's entry and each platform image's, each new to the set, each found written (true) or written now (false). */
    const run = (indexFound: boolean, platformFound: readonly [boolean, boolean], indexOp = "create"): { attestation: unknown; signed: unknown } => {
      const { events, onEvent } = eventCollector();
      onEvent(pre(IMAGE_INDEX_TYPE, "tools", "same"));
      onEvent(outputs(IMAGE_INDEX_TYPE, "tools", "same", { repoDigest: digestRef("tools", "a") }));
      const images = { tools: digestRef("tools", "a"), [platforms[0]]: digestRef("tools", "b"), [platforms[1]]: digestRef("tools", "c") };
      const old: Attested = indexOp === "same" ? { tools: attested("tools", "a", 7, false) } : {};
      onEvent(setPre("update", images, old));
      onEvent(setOutputs("update", { tools: attested("tools", "a", 7, indexFound), [platforms[0]]: attested("tools", "b", 4, platformFound[0]), [platforms[1]]: attested("tools", "c", 5, platformFound[1]) }, old));
      const [row] = summaryRows([layer("tools", null, true)], events);
      return { attestation: events.get("tools")?.attestation, signed: row?.signed };
    };
    // A run stopped after the index's tags and one platform image's: the next writes the other's.
    expect(run(true, [true, false])).toEqual({ attestation: expect.objectContaining({ op: "create", signedBefore: false, signature: tagOf("tools", "a", "sig"), packages: 7 }), signed: "signed" });
    // The index signed by an earlier run's set; a platform image's tags deleted since.
    expect(run(false, [false, false], "same")).toMatchObject({ attestation: { op: "create", signedBefore: false }, signed: "signed" });
    expect(run(true, [true, true])).toMatchObject({ attestation: { op: "create", signedBefore: true }, signed: "signed before" });
    expect(run(false, [true, true])).toMatchObject({ attestation: { op: "create", signedBefore: false }, signed: "signed" });
  });

  it("joins a multi-platform layer's images whichever comes first, the set's step or the index's, and a failed step leaves its row unknown", () => {
    const images = { tools: digestRef("tools", "a"), "tools/linux-arm64": digestRef("tools", "c") };
    const { events, onEvent } = eventCollector();
    onEvent(setPre("update", images));
    onEvent(setOutputs("update", { tools: attested("tools", "a", 7, true), "tools/linux-arm64": attested("tools", "c", 5, false) }));
    expect(events.has("tools")).toBe(false);
    onEvent(pre(IMAGE_INDEX_TYPE, "tools", "same"));
    onEvent(outputs(IMAGE_INDEX_TYPE, "tools", "same", { repoDigest: digestRef("tools", "a") }));
    expect(events.get("tools")?.attestation).toMatchObject({ op: "create", signedBefore: false, packages: 7 });
    expect(summaryRows([layer("tools", null, true)], events)[0]?.signed).toBe("signed");

    const failing = eventCollector();
    failing.onEvent(pre(IMAGE_INDEX_TYPE, "tools", "same"));
    failing.onEvent(outputs(IMAGE_INDEX_TYPE, "tools", "same", { repoDigest: digestRef("tools", "a") }));
    failing.onEvent(setPre("update", images, { tools: attested("tools", "a", 7, false) }));
    failing.onEvent(failed(ATTESTATIONS, "attestations-0", "update"));
    expect(failing.events.get("tools")?.attestation).toMatchObject({ op: "create", failed: true });
    const [row] = summaryRows([layer("tools", null, true)], failing.events);
    expect([row?.signed, row?.signature, row?.unsigned]).toEqual([undefined, undefined, "the run did not finish: its signatures are not known"]);
  });
});

describe("signatures in the summary and the run report", () => {
  const { events, onEvent } = eventCollector();
  for (const event of [
    pre(IMAGE, "base", "same"), outputs(IMAGE, "base", "same", { repoDigest: digestRef("base", "a") }),
    pre(IMAGE, "app", "update"), outputs(IMAGE, "app", "update", { repoDigest: digestRef("app", "b") }),
    setPre("update", { base: digestRef("base", "a"), app: digestRef("app", "b") }, { base: attested("base", "a", 3, false) }),
    // base's entry is a state's written before the count of added packages (an image not signed since).
    setOutputs("update", { base: attested("base", "a", 3, false), app: { ...attested("app", "b", 5, false), packagesAdded: 2 } }, { base: attested("base", "a", 3, false) }),
  ]) onEvent(event);
  const rows = summaryRows([layer("base", null, true), layer("app", "base", true)], events);
  const parents = new Map<string, string | null>([["base", null], ["app", "base"]]);
  const data = reportData({ stack: "dev", channelStack: "dev", runId: "r1", startedAt: 0, finishedAt: 1000, ok: true, rows, parents, events, logs: new Map() });

  it("says signed in this run, or signed before (a rerun's unchanged layer), with the package count and the SBOM's tag", () => {
    expect(rows.map((row) => [row.layer, row.signed, row.signature, row.packages, row.packagesAdded, row.sbom])).toEqual([
      ["base", "signed before", tagOf("base", "a", "sig"), 3, undefined, tagOf("base", "a", "att")],
      ["app", "signed", tagOf("app", "b", "sig"), 5, 2, tagOf("app", "b", "att")],
    ]);
    expect(data.layers.map((row) => row.signature)).toEqual([
      { state: "signed before", tag: tagOf("base", "a", "sig"), sbom: tagOf("base", "a", "att"), packages: 3, packagesAdded: null, why: null },
      { state: "signed", tag: tagOf("app", "b", "sig"), sbom: tagOf("app", "b", "att"), packages: 5, packagesAdded: 2, why: null },
    ]);
    expect(data.signing).toMatch(/^signed and attested \(SBOM, provenance\): 2 images/);
  });

  it("renders a signature, packages and SBOM column, the SBOM linked to its .att manifest in the registry", () => {
    const html = renderReport(data);
    expect(html).toMatch(/<th>signature<\/th><th title="[^"]*">packages \(added\)<\/th><th>SBOM<\/th>/);
    const appRow = html.split("\n").find((line) => line.includes('data-layer="app"')) ?? "";
    expect(appRow).toContain(`title="${tagOf("app", "b", "sig")}">signed</span>`);
    expect(appRow).toContain('<td class="num packages">5 (+2)</td>');
    expect(appRow).toContain(`href="http://127.0.0.1:5000/v2/g/img-app/manifests/sha256-${hex("b")}.att"`);
    const baseRow = html.split("\n").find((line) => line.includes('data-layer="base"')) ?? "";
    expect(baseRow).toContain(">signed before</span>");
    expect(baseRow).toContain('<td class="num packages">3</td>');
    expect(html).toContain('<div class="meta" id="signing">signed and attested (SBOM, provenance): 2 images');
    expect(registryManifestUrl("registry.example:5000/g/x:sha256-ab.att")).toBe("https://registry.example:5000/v2/g/x/manifests/sha256-ab.att");
  });

  it("the terminal summary has a packages column, with what each layer added when it is known", () => {
    const [header, , baseLine, appLine] = renderSummary(rows).split("\n");
    expect(header).toMatch(/\bpackages \(added\)\s*$/);
    expect(baseLine).toMatch(/\s3\s*$/);
    expect(appLine).toMatch(/\s5 \(\+2\)\s*$/);
    expect(renderSummary(summaryRows([layer("base", null, false)], events)).split("\n")[0]).not.toContain("packages");
  });

  it("says not signed and why for a stack without a key, and the summary's line stays", () => {
    const unsigned = summaryRows([layer("base", null, false)], events);
    const page = reportData({ stack: "dev", channelStack: "dev", runId: "r2", startedAt: 0, finishedAt: 1000, ok: true, rows: unsigned, parents, events, logs: new Map() });
    expect(page.layers[0]?.signature).toEqual({ state: "not signed", tag: null, sbom: null, packages: null, why: "no strata:signingKey" });
    expect(renderReport(page)).toContain('>not signed</span> <span class="why">(no strata:signingKey)</span>');
    expect(renderSummary(unsigned).split("\n").at(-1)).toBe("not signed (no strata:signingKey)");
  });

  it("renders a report recorded before signatures were reported without those columns", () => {
    const old = { ...data, layers: data.layers.map(({ signature: _signature, ...rest }) => rest) };
    delete (old as { signing?: unknown }).signing;
    const html = renderReport(old);
    expect(html).not.toContain("<th>signature</th>");
    expect(html).not.toContain('id="signing"');
  });
});
