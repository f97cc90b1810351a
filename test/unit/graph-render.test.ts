/** The pictures parse: Mermaid with mermaid's own parser, DOT with Graphviz (WebAssembly). */
import { Graphviz } from "@hpcc-js/wasm-graphviz";
import { JSDOM } from "jsdom";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/core/catalog.js";
import { graphNodes, renderDot, renderMermaid } from "../../src/cli/graph-render.js";
import { type PlanStatus } from "../../src/cli/plan-status.js";
import { noteCatalog } from "../helpers/catalog.js";

type Mermaid = typeof import("mermaid").default;
let mermaid: Mermaid;
beforeAll(async () => {
  // mermaid's sanitiser needs a DOM; its parser itself does not draw anything.
  const { window } = new JSDOM("");
  Object.assign(globalThis, { window, document: window.document });
  mermaid = (await import("mermaid")).default;
});

const catalog = loadCatalog(noteCatalog());
const statuses = new Map<string, { status: PlanStatus; tag: string }>([
  ["ms", { status: "rebuild", tag: "1.0-p0" }],
  ["keystone", { status: "new", tag: "1.0-p6" }],
  ["debian", { status: "blocked", tag: "1.0-p0" }],
]);

describe("graph pictures", () => {
  it("Mermaid: one node per layer with kind, image and tag, one edge per parent, and it parses", async () => {
    const text = renderMermaid(graphNodes(catalog.layers));
    expect(text.split("\n").filter((line) => line.includes("-->"))).toHaveLength(5);
    expect(text).toContain('L_keystone["<b>keystone</b> (service)<br/>debian-mos-ms-keystone:1.0-p5"]');
    await expect(mermaid.parse(text)).resolves.toMatchObject({ diagramType: "flowchart-v2" });
  });
  it("Mermaid coloured by plan status parses", async () => {
    const text = renderMermaid(graphNodes(catalog.layers, statuses));
    expect(text).toContain("class L_ms rebuild");
    expect(text).toContain("debian-mos-ms-keystone:1.0-p6<br/><i>new</i>");
    await expect(mermaid.parse(text)).resolves.toBeTruthy();
  });
  it("DOT renders to SVG with Graphviz, coloured by status", async () => {
    const graphviz = await Graphviz.load();
    const dot = renderDot(graphNodes(catalog.layers, statuses));
    expect(dot).toContain('"ms" -> "keystone-base";');
    const svg = graphviz.dot(dot);
    expect(svg).toMatch(/^<\?xml/);
    expect(svg.match(/class="node"/g)).toHaveLength(6);
    expect(svg).toContain("#ffe0a3");
  });
});
