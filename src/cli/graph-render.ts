/**
 * The layer tree as a picture: Mermaid (for READMEs and code reviews) and
 * Graphviz DOT (for SVG). Pure; SVG rendering lives in the CLI, through
 * Graphviz compiled to WebAssembly.
 */
import { type Layer } from "../core/catalog.js";
import { type PlanStatus } from "./plan-status.js";
import { formatTag } from "../core/version.js";

export interface GraphNode {
  readonly layer: Layer;
  /** Tag to show; the plain release tag when no stack is given. */
  readonly tag: string;
  readonly status?: PlanStatus;
}

/** Fill colours by plan status, shared by both formats. */
const STATUS_COLOURS: Record<PlanStatus, string> = {
  unchanged: "#e8e8e8",
  new: "#c6f0c2",
  adopt: "#cdeeea",
  copy: "#d8ecf8",
  rebuild: "#ffe0a3",
  retag: "#cfe2ff",
  removed: "#d9d9d9",
  blocked: "#f7b6b6",
  refused: "#e57373",
  promote: "#e2d4f7",
};

export function graphNodes(layers: readonly Layer[], statuses?: ReadonlyMap<string, { status: PlanStatus; tag: string }>): GraphNode[] {
  return layers.map((layer) => {
    const planned = statuses?.get(layer.name);
    return { layer, tag: planned?.tag ?? formatTag(layer.version), ...(planned === undefined ? {} : { status: planned.status }) };
  });
}

/** Mermaid ids may not contain dashes reliably across renderers. */
const nodeId = (name: string): string => `L_${name.replace(/[^A-Za-z0-9]/g, "_")}`;

export function renderMermaid(nodes: readonly GraphNode[]): string {
  const lines = ["flowchart TD"];
  for (const node of nodes) {
    const status = node.status === undefined ? "" : `<br/><i>${node.status}</i>`;
    lines.push(`  ${nodeId(node.layer.name)}["<b>${node.layer.name}</b> (${node.layer.kind})<br/>${node.layer.image}:${node.tag}${status}"]`);
  }
  for (const node of nodes) {
    if (node.layer.parent !== undefined) lines.push(`  ${nodeId(node.layer.parent)} --> ${nodeId(node.layer.name)}`);
  }
  const used = [...new Set(nodes.map((node) => node.status).filter((status): status is PlanStatus => status !== undefined))];
  for (const status of used) {
    lines.push(`  classDef ${status} fill:${STATUS_COLOURS[status]},stroke:#555`);
    lines.push(`  class ${nodes.filter((node) => node.status === status).map((node) => nodeId(node.layer.name)).join(",")} ${status}`);
  }
  return lines.join("\n");
}

const quote = (text: string): string => `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

export function renderDot(nodes: readonly GraphNode[]): string {
  const lines = ["digraph strata {", "  rankdir=TB;", '  node [shape=box, style="rounded,filled", fontname="Helvetica", fillcolor="#ffffff", margin="0.3,0.12"];'];
  for (const node of nodes) {
    const label = `${node.layer.name} (${node.layer.kind})\\n${node.layer.image}:${node.tag}${node.status === undefined ? "" : `\\n${node.status}`}`;
    const fill = node.status === undefined ? "" : `, fillcolor=${quote(STATUS_COLOURS[node.status])}`;
    lines.push(`  ${quote(node.layer.name)} [label="${label.replaceAll('"', '\\"')}"${fill}];`);
  }
  for (const node of nodes) {
    if (node.layer.parent !== undefined) lines.push(`  ${quote(node.layer.parent)} -> ${quote(node.layer.name)};`);
  }
  lines.push("}");
  return lines.join("\n");
}
