/**
 * The run report: one self-contained HTML file (styles and script inline, no network) beside a
 * run's per-layer logs. The layer tree coloured by result, a timeline bar per layer split into
 * pull / build / push with the chain that held the run up marked, the run's total and the sum of
 * its steps, per layer its ref, digest, fingerprint, why it was (or was not) built and its log;
 * for a CI run, the image set. Subtrees collapse and rows filter by result, so 200 layers stay
 * readable. `reportData` is pure (a unit test pins it); `renderReport` turns it into the page.
 */
import { criticalChain } from "../core/graph.js";
import { isLoopbackRegistry, parseReference } from "../core/reference.js";
import { type LayerEvent, type StackLayerOutput } from "../engine/events.js";
import { type ImageSet } from "./image-set.js";
import { packageCell, RESULTS, type LayerResult, type SignatureState, signingLine, type SummaryRow } from "./summary.js";

export interface ReportLayer {
  readonly layer: string;
  readonly image: string;
  readonly parent: string | null;
  /** 0 for a root. */
  readonly depth: number;
  readonly result: LayerResult;
  readonly ref: string;
  readonly digest: string | null;
  readonly fingerprint: string | null;
  /** Why it was built, copied, adopted, left as it was, or why it failed or was skipped. */
  readonly reason: string;
  /** Its log file, relative to the report (a layer that was not built has none). */
  readonly log: string | null;
  /** ms from the run's start; absent for a layer that did no work. */
  readonly bar?: { readonly start: number; readonly buildStart?: number; readonly pushStart?: number; readonly end: number };
  readonly critical: boolean;
  /** What the run says of its signature; absent when the run said nothing of signing (older reports too). */
  readonly signature?: ReportSignature;
}

/** A layer's signature in the report: signed in this run, signed by an earlier one, or not signed and why. */
export interface ReportSignature {
  readonly state: SignatureState | "not signed";
  /** The `.sig` tag, when signed. */
  readonly tag: string | null;
  /** The SBOM's `.att` tag (the provenance beside it), when the engine reported it. */
  readonly sbom: string | null;
  /** Packages in its SBOM, when the engine reported it. */
  readonly packages: number | null;
  /** Of those, the ones its layer added over the image it was made on (absent from reports written before it). */
  readonly packagesAdded?: number | null;
  /** Why it is not signed. */
  readonly why: string | null;
}

export interface ReportData {
  readonly stack: string;
  readonly channelStack: string;
  readonly runId: string;
  /** ISO time the run started. */
  readonly startedAt: string;
  /** The run, wall clock, in seconds. */
  readonly totalSeconds: number;
  /** Every layer's step added up, in seconds (more than the total when steps overlapped). */
  readonly stepSeconds: number;
  readonly ok: boolean;
  readonly counts: Readonly<Partial<Record<LayerResult, number>>>;
  readonly layers: readonly ReportLayer[];
  readonly imageSet: ImageSet | null;
  /** The summary's signing line (summary.ts signingLine): how many images are signed, or why none is. */
  readonly signing?: string | null;
}

export interface ReportInput {
  readonly stack: string;
  readonly channelStack: string;
  readonly runId: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly ok: boolean;
  /** The summary's rows, tree order. */
  readonly rows: readonly SummaryRow[];
  readonly parents: ReadonlyMap<string, string | null>;
  readonly events: ReadonlyMap<string, LayerEvent>;
  readonly stackLayers?: ReadonlyMap<string, StackLayerOutput>;
  /** Layer → log file name relative to the report. */
  readonly logs: ReadonlyMap<string, string>;
  readonly imageSet?: ImageSet;
}

/** Why a layer ended as it did, in a reader's words. Pure. */
export function reasonOf(row: SummaryRow, event: LayerEvent | undefined): string {
  if (row.result === "failed" || row.result === "skipped") return row.detail;
  if (row.result === "unchanged") return "same inputs as the stack's last run";
  if (row.result !== "built") return row.detail;
  if (event?.op === "create") return "not built in this stack before";
  const changed = event?.changedInputs ?? [];
  if (changed.some((input) => input === "imageName" || input.startsWith("imageName"))) return "a new tag (version bumped)";
  if (changed.some((input) => input.startsWith("build") || input.startsWith("labels") || input.startsWith("context"))) return "its build inputs changed: its content, build arguments or parent's digest";
  return changed.length > 0 ? `changed: ${changed.join(", ")}` : "rebuilt";
}

export function reportData(input: ReportInput): ReportData {
  const depthOf = new Map<string, number>();
  const finishedAt = new Map<string, number>();
  for (const [layer, event] of input.events) if (event.timing?.finishedAt !== undefined && event.timing.startedAt !== undefined) finishedAt.set(layer, event.timing.finishedAt);
  const chain = new Set(criticalChain(input.rows.map((row) => ({ name: row.layer, parent: input.parents.get(row.layer) ?? null })), finishedAt));
  const counts: Partial<Record<LayerResult, number>> = {};
  let stepMs = 0;
  const layers = input.rows.map((row): ReportLayer => {
    const parent = input.parents.get(row.layer) ?? null;
    const depth = parent === null ? 0 : (depthOf.get(parent) ?? -1) + 1;
    depthOf.set(row.layer, depth);
    counts[row.result] = (counts[row.result] ?? 0) + 1;
    const event = input.events.get(row.layer);
    const timing = event?.timing;
    const at = (time: number | undefined): number | undefined => (time === undefined ? undefined : time - input.startedAt);
    let bar: ReportLayer["bar"];
    if (timing?.startedAt !== undefined && timing.finishedAt !== undefined) {
      stepMs += timing.finishedAt - timing.startedAt;
      const buildStart = at(timing.buildStartedAt);
      const pushStart = at(timing.pushStartedAt);
      bar = { start: timing.startedAt - input.startedAt, end: timing.finishedAt - input.startedAt, ...(buildStart === undefined ? {} : { buildStart }), ...(pushStart === undefined ? {} : { pushStart }) };
    }
    return {
      layer: row.layer, image: row.image, parent, depth, result: row.result, ref: row.ref, digest: row.digest,
      fingerprint: input.stackLayers?.get(row.layer)?.fingerprint ?? null,
      reason: reasonOf(row, event),
      log: input.logs.get(row.layer) ?? null,
      ...(bar === undefined ? {} : { bar }),
      critical: chain.has(row.layer),
      ...signatureOf(row),
    };
  });
  return {
    stack: input.stack, channelStack: input.channelStack, runId: input.runId, startedAt: new Date(input.startedAt).toISOString(),
    totalSeconds: round((input.finishedAt - input.startedAt) / 1000), stepSeconds: round(stepMs / 1000), ok: input.ok, counts, layers,
    imageSet: input.imageSet ?? null,
    signing: signingLine(input.rows) ?? null,
  };
}

/** A row's signature for the report, from what the summary decided (summary.ts signingOf). */
function signatureOf(row: SummaryRow): { signature?: ReportSignature } {
  if (row.signature !== undefined) {
    return { signature: { state: row.signed ?? "signed", tag: row.signature, sbom: row.sbom ?? null, packages: row.packages ?? null, packagesAdded: row.packagesAdded ?? null, why: null } };
  }
  if (row.unsigned !== undefined) return { signature: { state: "not signed", tag: null, sbom: null, packages: null, why: row.unsigned } };
  return {};
}

const round = (seconds: number): number => Math.round(seconds * 10) / 10;

const escape = (text: string): string => text.replace(/[&<>"']/g, (char) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[char] as string);

const COLOURS: Readonly<Record<LayerResult, string>> = {
  built: "#2e7d32", copied: "#1565c0", adopted: "#6a1b9a", unchanged: "#9e9e9e", promoted: "#00838f", failed: "#c62828", skipped: "#ef6c00",
};

/** One layer's timeline: pull, build and push as segments of a bar across the run's length. */
function timelineCell(layer: ReportLayer, totalMs: number): string {
  if (layer.bar === undefined || totalMs <= 0) return `<td class="timeline"></td>`;
  const pct = (ms: number): string => `${((Math.max(0, ms) / totalMs) * 100).toFixed(2)}%`;
  const { start, end } = layer.bar;
  const buildStart = layer.bar.buildStart ?? start;
  const pushStart = layer.bar.pushStart ?? end;
  const segment = (kind: string, from: number, to: number): string => (to > from ? `<span class="seg ${kind}" style="left:${pct(from)};width:${pct(to - from)}" title="${kind} ${((to - from) / 1000).toFixed(1)} s"></span>` : "");
  return `<td class="timeline"><div class="track${layer.critical ? " critical" : ""}">${segment("pull", start, buildStart)}${segment("build", buildStart, pushStart)}${segment("push", pushStart, end)}</div></td>`;
}

const short = (digest: string | null): string => (digest === null ? "-" : `<span title="${escape(digest)}">${escape(digest.replace(/^sha256:/, "").slice(0, 12))}</span>`);

/**
 * The registry API's address of a tag (`registry/repo:tag`): its manifest, which lists the
 * attestations' blobs. Plain HTTP for a loopback registry (the only kind Strata talks to so).
 */
export function registryManifestUrl(tagRef: string): string {
  const { registry, path, tag } = parseReference(tagRef);
  return `${isLoopbackRegistry(registry) ? "http" : "https"}://${registry}/v2/${path}/manifests/${tag ?? ""}`;
}

const linkable = (tagRef: string): boolean => {
  try {
    return parseReference(tagRef).tag !== undefined;
  } catch {
    return false;
  }
};

/** `sha256-1a2b3c4d5e6f….att` from a cosign tag reference: the part a reader tells tags apart by. */
const shortTag = (tagRef: string): string => {
  const tag = tagRef.slice(tagRef.lastIndexOf(":") + 1);
  return tag.length > 24 ? `${tag.slice(0, 19)}…${tag.slice(tag.lastIndexOf("."))}` : tag;
};

const SIGNATURE_COLOURS: Readonly<Record<ReportSignature["state"], string>> = { signed: "#2e7d32", "signed before": "#558b2f", "not signed": "#757575" };

/** The signature, package count and SBOM cells: the state (the `.sig` tag or the reason in its title), the count, the `.att` tag. */
function signatureCells(signature: ReportSignature | undefined): string {
  if (signature === undefined) return `<td class="signature"></td><td class="num packages"></td><td class="sbom"></td>`;
  const title = signature.tag ?? signature.why ?? "";
  const state = `<span class="sig" style="color:${SIGNATURE_COLOURS[signature.state]}" title="${escape(title)}">${signature.state}</span>`;
  const sbom = signature.sbom === null ? "" : linkable(signature.sbom) === false ? escape(signature.sbom) : `<a class="sbom-ref" href="${escape(registryManifestUrl(signature.sbom))}" title="${escape(signature.sbom)}: the SPDX SBOM and the provenance as cosign attestations (cosign verify-attestation --type spdxjson reads them)">${escape(shortTag(signature.sbom))}</a>`;
  return `<td class="signature">${state}${signature.state === "not signed" && signature.why !== null ? ` <span class="why">(${escape(signature.why)})</span>` : ""}</td><td class="num packages">${signature.packages === null ? "" : escape(packageCell({ packages: signature.packages, ...(typeof signature.packagesAdded === "number" ? { packagesAdded: signature.packagesAdded } : {}) }))}</td><td class="sbom mono">${sbom}</td>`;
}

export function renderReport(data: ReportData): string {
  const totalMs = data.totalSeconds * 1000;
  const signing = data.layers.some((layer) => layer.signature !== undefined);
  const hasChildren = new Set(data.layers.map((layer) => layer.parent).filter((parent): parent is string => parent !== null));
  const rows = data.layers.map((layer) => [
    `<tr class="layer result-${layer.result}${layer.critical ? " on-critical-path" : ""}" data-layer="${escape(layer.layer)}" data-parent="${escape(layer.parent ?? "")}" data-result="${layer.result}">`,
    // The log link sits by the layer's name, where the eye is: a last column scrolls out of sight on a laptop's screen.
    `<td class="name" style="padding-left:${0.4 + layer.depth * 1.2}em">${hasChildren.has(layer.layer) ? `<button class="toggle" aria-label="collapse ${escape(layer.layer)}">▾</button>` : `<span class="leaf"></span>`}${escape(layer.layer)}${layer.log === null ? "" : ` <a class="log" href="${escape(layer.log)}" title="the build output of ${escape(layer.layer)}">log</a>`}</td>`,
    `<td><span class="badge" style="background:${COLOURS[layer.result]}">${layer.result}</span></td>`,
    timelineCell(layer, totalMs),
    `<td class="num">${layer.bar === undefined ? "" : ((layer.bar.end - layer.bar.start) / 1000).toFixed(1)}</td>`,
    `<td class="ref">${escape(layer.ref)}</td>`,
    `<td class="mono">${short(layer.digest)}</td>`,
    `<td class="mono">${short(layer.fingerprint)}</td>`,
    signing ? signatureCells(layer.signature) : "",
    `<td class="reason">${escape(layer.reason)}</td>`,
    "</tr>",
  ].join("")).join("\n");
  const chips = RESULTS.filter((result) => (data.counts[result] ?? 0) > 0)
    .map((result) => `<label class="chip" style="border-color:${COLOURS[result]}"><input type="checkbox" class="filter" value="${result}" checked> ${result} ${data.counts[result]}</label>`).join(" ");
  const critical = data.layers.filter((layer) => layer.critical).map((layer) => escape(layer.layer)).join(" → ");
  const imageSet = data.imageSet === null ? "" : `<h2>Image set (change ${data.imageSet.change ?? "-"}${data.imageSet.patchset === null ? "" : `, patchset ${data.imageSet.patchset}`})</h2>
<pre class="image-set">${data.imageSet.images.map((image) => escape(`${image.ref}@${image.digest}`)).join("\n")}</pre>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Strata run ${escape(data.runId)} — ${escape(data.stack)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.3em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.2em 0 .4em}
.meta{color:#555;margin-bottom:.6em} .meta b{color:#222}
.chip{display:inline-block;border:2px solid;border-radius:1em;padding:0 .6em;margin:0 .2em .4em 0;cursor:pointer;user-select:none}
table{border-collapse:collapse;width:100%} th,td{padding:.25em .5em;border-bottom:1px solid #eee;text-align:left;vertical-align:middle;white-space:nowrap}
th{position:sticky;top:0;background:#fafafa;z-index:1}
td.reason{white-space:normal;min-width:16em} td.ref{font-size:.85em;color:#444} .mono{font-family:ui-monospace,monospace;font-size:.85em} .num{text-align:right}
.badge{color:#fff;border-radius:.3em;padding:0 .4em;font-size:.85em}
.toggle{border:0;background:none;cursor:pointer;width:1.2em;padding:0} .leaf{display:inline-block;width:1.2em}
td.timeline{width:32%;min-width:12em} .track{position:relative;height:.9em;background:#f3f3f3;border-radius:2px}
.track.critical{outline:2px solid #c62828} .seg{position:absolute;top:0;bottom:0}
.seg.pull{background:#90caf9} .seg.build{background:#43a047} .seg.push{background:#ffb300}
.legend span{display:inline-block;width:1em;height:.8em;margin:0 .2em 0 .8em;vertical-align:middle}
tr.on-critical-path td.name{font-weight:600} tr.hidden{display:none}
a.log{font-weight:normal;font-size:.85em;margin-left:.4em}
.image-set{background:#f7f7f7;padding:.6em;overflow:auto}
.sig{font-weight:600} .why{color:#757575;font-size:.85em}
</style></head>
<body>
<h1>Strata run of stack <b>${escape(data.stack)}</b>${data.channelStack === data.stack ? "" : ` (channel ${escape(data.channelStack)})`}: ${data.ok ? "succeeded" : "failed"}</h1>
<div class="meta">run <b>${escape(data.runId)}</b>, started ${escape(data.startedAt)}; total <b id="total">${data.totalSeconds.toFixed(1)} s</b>, steps added up <b id="steps">${data.stepSeconds.toFixed(1)} s</b>; ${data.layers.length} layers</div>
<div class="meta">critical path: <b id="critical">${critical === "" ? "none (nothing was built)" : critical}</b>
<span class="legend"><span style="background:#90caf9"></span>pull<span style="background:#43a047"></span>build<span style="background:#ffb300"></span>push</span></div>
${data.signing === undefined || data.signing === null ? "" : `<div class="meta" id="signing">${escape(data.signing)}</div>
`}<div>${chips}</div>
<table id="layers"><thead><tr><th>layer</th><th>result</th><th>timeline</th><th>s</th><th>ref</th><th>digest</th><th>fingerprint</th>${signing ? "<th>signature</th><th title=\"packages in the image's SBOM (and, in brackets, those its layer added over the image it was made on)\">packages (added)</th><th>SBOM</th>" : ""}<th>reason</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${imageSet}
<script>
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.layer"));
  var byParent = {};
  rows.forEach(function (row) { (byParent[row.dataset.parent] = byParent[row.dataset.parent] || []).push(row); });
  var collapsed = {};
  function hiddenByAncestor(row) {
    for (var parent = row.dataset.parent; parent; ) {
      if (collapsed[parent]) return true;
      var up = document.querySelector('tr.layer[data-layer="' + parent + '"]');
      parent = up ? up.dataset.parent : "";
    }
    return false;
  }
  function refresh() {
    var shown = {};
    document.querySelectorAll("input.filter").forEach(function (box) { shown[box.value] = box.checked; });
    rows.forEach(function (row) { row.classList.toggle("hidden", !shown[row.dataset.result] || hiddenByAncestor(row)); });
  }
  document.querySelectorAll("button.toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var layer = button.closest("tr").dataset.layer;
      collapsed[layer] = !collapsed[layer];
      button.textContent = collapsed[layer] ? "▸" : "▾";
      refresh();
    });
  });
  document.querySelectorAll("input.filter").forEach(function (box) { box.addEventListener("change", refresh); });
})();
</script>
</body></html>
`;
}
