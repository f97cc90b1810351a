/**
 * The layer catalog: one folder per layer under `layers/`, each holding a
 * `layer.yaml`, a `Dockerfile` and the files it copies. Loading validates
 * everything that can be checked without a stack config and collects every
 * problem before failing.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import { type Document, isScalar, parseDocument } from "yaml";
import { findCycles, topologicalOrder } from "./graph.js";
import { listContext } from "./hash.js";
import { onePerField, type Problem, throwIfAny, yamlSyntaxProblems } from "./problems.js";
import { isPathComponent } from "./reference.js";
import { type LayerVersion, parseLayerVersion } from "./version.js";

/** The kinds of layer, in the only order a tree may descend through them. */
export const LAYER_KINDS = ["base", "tools", "common-libs", "dependencies", "service"] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];

export const LAYER_FILE = "layer.yaml";
export const DOCKERFILE = "Dockerfile";

/** What `layer.yaml` holds, as written. */
export interface LayerManifest {
  readonly kind: LayerKind;
  readonly parent?: string;
  readonly version: string;
  readonly description?: string;
}

export interface Layer {
  /** The folder name: the layer's identity in the catalog and in stack outputs. */
  readonly name: string;
  readonly kind: LayerKind;
  readonly parent?: string;
  readonly version: LayerVersion;
  readonly description?: string;
  /** The layer folder: the Docker build context. */
  readonly contextDir: string;
  readonly dockerfile: string;
  /** The image name derived from the ancestry (`debian-mos-ms-keystone`). */
  readonly image: string;
}

export interface Catalog {
  readonly dir: string;
  /** Parents before children. */
  readonly layers: readonly Layer[];
}

const LAYER_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["kind", "version"],
  properties: {
    kind: { enum: [...LAYER_KINDS] },
    parent: { type: "string", minLength: 1 },
    version: { type: "string" },
    description: { type: "string" },
  },
} as const;

const ALLOWED_KEYS = Object.keys(LAYER_SCHEMA.properties).join(", ");
const validateManifestShape = new Ajv({ allErrors: true }).compile<LayerManifest>(LAYER_SCHEMA);

/**
 * A top-level value as the user wrote it: YAML reads `version: 3.0` as the number 3, and a message
 * that echoes "3" names a value nobody wrote. Undefined when the key holds no plain scalar.
 */
function writtenAs(document: Document, text: string, key: string): string | undefined {
  const node = document.get(key, true);
  return isScalar(node) && node.range != null ? text.slice(node.range[0], node.range[1]) : undefined;
}

/** Turns one Ajv error into a problem a user can act on; `written` gives a field's source text. */
function schemaProblem(file: string, error: ErrorObject, data: unknown, written: (key: string) => string | undefined): Problem {
  const field = error.instancePath.replace(/^\//, "").replaceAll("/", ".");
  switch (error.keyword) {
    case "additionalProperties": {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      return { file, field: key, message: `unknown key "${key}"`, fix: `remove it or correct its spelling; the keys are ${ALLOWED_KEYS}` };
    }
    case "required": {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      const fix = key === "kind" ? `add "kind:" with one of ${LAYER_KINDS.join(", ")}` : `add "${key}:", for example "version: 1.0.0"`;
      return { file, field: key, message: `"${key}" is missing`, fix };
    }
    case "enum":
      return { file, field, message: `"${field}" is not one of the kinds`, fix: `use one of ${LAYER_KINDS.join(", ")}` };
    case "type":
      if (field === "") {
        return { file, message: "the file is not a mapping of keys to values", fix: `write "kind:", "version:" and, except for a base layer, "parent:"` };
      }
      // A version like 1.0 is a number in YAML: quoting it would only meet the next rule (three numbers).
      if (field === "version") {
        const value = (data as Record<string, unknown>).version;
        const read = typeof value === "number" ? ` (YAML reads it as the number ${value})` : "";
        return { file, field, message: `"version" must be three numbers, not ${written("version") ?? JSON.stringify(value)}${read}`, fix: 'write three plain numbers, for example "version: 1.0.5" (the tag becomes 1.0-p5)' };
      }
      return { file, field, message: `"${field}" must be a ${String((error.params as { type: string }).type)}`, fix: `quote the value, for example ${field}: "…"` };
    default:
      return { file, field, message: error.message ?? "invalid", fix: `correct "${field}"` };
  }
}

/**
 * Parses and shape-checks one `layer.yaml`; returns its manifest or the problems, and the layer's
 * kind when the file names a valid one even though something else in it is wrong (the Dockerfile
 * checks depend on it, and run whatever else is wrong).
 */
export function parseManifest(file: string, text: string): { manifest?: LayerManifest; kind?: LayerKind; problems: Problem[] } {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    return { problems: yamlSyntaxProblems(file, document.errors) };
  }
  const data: unknown = document.toJS();
  if (!validateManifestShape(data)) {
    const kind = (data as { kind?: unknown } | null)?.kind;
    return {
      ...(LAYER_KINDS.includes(kind as LayerKind) ? { kind: kind as LayerKind } : {}),
      problems: onePerField((validateManifestShape.errors ?? []).map((error) => schemaProblem(file, error, data, (key) => writtenAs(document, text, key)))),
    };
  }
  return { manifest: data, kind: data.kind, problems: [] };
}

/**
 * A non-root layer must build on the image Strata hands it: the Dockerfile's
 * first instruction declares `ARG BASE_IMAGE` and its first `FROM` uses it.
 */
export function dockerfileProblems(file: string, text: string, isRoot: boolean | undefined): Problem[] {
  const instructions = text
    .split(/\r?\n/)
    .map((line, index) => ({ line: line.trim(), number: index + 1 }))
    .filter(({ line }) => line !== "" && !line.startsWith("#"));
  const firstFrom = instructions.find(({ line }) => /^FROM\s/i.test(line));
  if (firstFrom === undefined) {
    return [{ file, message: "no FROM instruction", fix: isRoot === true ? 'start from "FROM scratch" and ADD a root filesystem' : isRoot === false ? 'start with "ARG BASE_IMAGE" then "FROM ${BASE_IMAGE}"' : 'a base layer starts "FROM scratch"; any other with "ARG BASE_IMAGE" then "FROM ${BASE_IMAGE}"' }];
  }
  // A root layer may start from anything; a layer of unknown kind (its layer.yaml is broken) is checked no further.
  if (isRoot !== false) return [];
  const problems: Problem[] = [];
  const first = instructions[0];
  if (first === undefined || !/^ARG\s+BASE_IMAGE\s*$/i.test(first.line)) {
    problems.push({
      file,
      field: `line ${first?.number ?? 1}`,
      message: 'the first instruction is not "ARG BASE_IMAGE"',
      fix: 'make "ARG BASE_IMAGE" the first instruction, without a default: Strata passes the parent\'s digest',
    });
  }
  if (!/^FROM\s+(\$\{BASE_IMAGE\}|\$BASE_IMAGE)(\s+AS\s+\S+)?\s*$/i.test(firstFrom.line)) {
    problems.push({
      file,
      field: `line ${firstFrom.number}`,
      message: `the first FROM is "${firstFrom.line}", which ignores the parent layer`,
      fix: 'write "FROM ${BASE_IMAGE}" so the layer builds on its parent\'s exact digest',
    });
  }
  return problems;
}

/**
 * The image name: the image name of the nearest ancestor whose kind is not
 * `dependencies`, a dash, then the layer's own name. A `dependencies` layer
 * (`keystone-base`) is a sibling-in-name of the service above it, so the
 * service is `debian-mos-ms-keystone`, not `…-keystone-base-keystone`.
 */
export function imageNames(layers: readonly Pick<Layer, "name" | "kind" | "parent">[]): Map<string, string> {
  const byName = new Map(layers.map((layer) => [layer.name, layer] as const));
  const names = new Map<string, string>();
  const nameOf = (layerName: string): string => {
    const known = names.get(layerName);
    if (known !== undefined) return known;
    const layer = byName.get(layerName);
    if (layer === undefined) throw new Error(`no layer named ${layerName}`);
    let ancestorName = layer.parent;
    while (ancestorName !== undefined && byName.get(ancestorName)?.kind === "dependencies") {
      ancestorName = byName.get(ancestorName)?.parent;
    }
    const image = ancestorName === undefined ? layer.name : `${nameOf(ancestorName)}-${layer.name}`;
    names.set(layerName, image);
    return image;
  };
  for (const layer of layers) nameOf(layer.name);
  return names;
}

interface ManifestEntry {
  readonly name: string;
  readonly file: string;
  readonly manifest: LayerManifest;
  readonly version: LayerVersion;
  readonly contextDir: string;
  readonly dockerfile: string;
}

/**
 * Rules that span layers: parents, kind order, cycles, unique image names.
 * `brokenLayers` are folders whose own files are invalid (already reported):
 * children of those are not told again that their parent does not exist.
 */
export function crossLayerProblems(entries: readonly Pick<ManifestEntry, "name" | "file" | "manifest">[], brokenLayers: ReadonlySet<string> = new Set()): Problem[] {
  const problems: Problem[] = [];
  const byName = new Map(entries.map((entry) => [entry.name, entry] as const));
  for (const entry of entries) {
    const { kind, parent } = entry.manifest;
    if (kind === "base") {
      if (parent !== undefined) {
        problems.push({ file: entry.file, field: "parent", message: `a base layer has no parent, but "${parent}" is given`, fix: 'remove "parent", or change "kind" if this layer builds on another' });
      }
      continue;
    }
    if (parent === undefined) {
      problems.push({ file: entry.file, field: "parent", message: `a ${kind} layer needs a parent`, fix: 'add "parent: <folder of the layer it builds on>", or use "kind: base" for a root' });
      continue;
    }
    const parentEntry = byName.get(parent);
    if (parentEntry === undefined && brokenLayers.has(parent)) continue;
    if (parentEntry === undefined) {
      const known = [...byName.keys()].sort().join(", ");
      problems.push({ file: entry.file, field: "parent", message: `no layer named "${parent}"`, fix: `name an existing layer folder (${known})` });
      continue;
    }
    const childRank = LAYER_KINDS.indexOf(kind);
    const parentRank = LAYER_KINDS.indexOf(parentEntry.manifest.kind);
    if (childRank <= parentRank) {
      problems.push({
        file: entry.file,
        field: "kind",
        message: `a ${kind} layer cannot sit on "${parent}", a ${parentEntry.manifest.kind} layer: kinds go ${LAYER_KINDS.join(" → ")} and never back or sideways`,
        fix: `give this layer a kind after ${parentEntry.manifest.kind}, or a parent of a kind before ${kind}`,
      });
    }
  }
  for (const cycle of findCycles(entries.map((entry) => ({ name: entry.name, parent: entry.manifest.parent })))) {
    const first = byName.get(cycle[0] as string);
    problems.push({
      file: first?.file ?? cycle[0] as string,
      field: "parent",
      message: `the parents form a cycle: ${[...cycle, cycle[0]].join(" → ")}`,
      fix: "point one of these layers at a layer outside the cycle",
    });
  }
  // Image names need every ancestor: checked for each layer whose whole chain up to a base is sound,
  // whatever is wrong elsewhere in the tree.
  const resolvable = entries.filter((entry) => chainIsSound(entry.name, byName));
  const seen = new Map<string, string>();
  const images = imageNames(resolvable.map((entry) => ({ name: entry.name, kind: entry.manifest.kind, parent: entry.manifest.parent })));
  for (const entry of resolvable) {
    const image = images.get(entry.name) as string;
    const other = seen.get(image);
    if (other !== undefined) {
      problems.push({ file: entry.file, field: "image name", message: `image name "${image}" is also the image name of layer "${other}"`, fix: "rename one of the two layer folders" });
    } else {
      seen.set(image, entry.name);
    }
  }
  return problems;
}

/** Whether a layer's parents lead, without a gap or a cycle, to a base layer. */
function chainIsSound(name: string, byName: ReadonlyMap<string, Pick<ManifestEntry, "manifest">>): boolean {
  const visited = new Set<string>();
  for (let current: string | undefined = name; current !== undefined; current = byName.get(current)?.manifest.parent) {
    const entry = byName.get(current);
    if (entry === undefined || visited.has(current)) return false;
    visited.add(current);
    if (entry.manifest.kind === "base") return entry.manifest.parent === undefined;
  }
  return false;
}

/** Loads and validates a catalog; throws an InputError listing every problem. */
export function loadCatalog(catalogDir: string, displayRoot: string = process.cwd()): Catalog {
  const display = (target: string): string => path.relative(displayRoot, target) || ".";
  const problems: Problem[] = [];
  if (!existsSync(catalogDir) || !statSync(catalogDir).isDirectory()) {
    throwIfAny([{ file: display(catalogDir), message: "the catalog folder does not exist", fix: "create it with one folder per layer, or pass --catalog DIR" }]);
  }
  const folders = readdirSync(catalogDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith("."))
    .map((entry) => entry.name)
    .sort();
  if (folders.length === 0) {
    throwIfAny([{ file: display(catalogDir), message: "the catalog is empty", fix: `add a folder per layer, each with ${LAYER_FILE} and ${DOCKERFILE}` }]);
  }
  const entries: ManifestEntry[] = [];
  // Layers whose layer.yaml is sound enough for the rules that span layers (a bad version does not matter there).
  const treeEntries: Pick<ManifestEntry, "name" | "file" | "manifest">[] = [];
  const broken = new Set<string>();
  for (const name of folders) {
    const contextDir = path.join(catalogDir, name);
    const file = display(path.join(contextDir, LAYER_FILE));
    if (!isPathComponent(name)) {
      problems.push({ file: display(contextDir), field: "folder name", message: `"${name}" is not a valid image name part`, fix: 'rename the folder with lowercase letters and digits joined by ".", "_" or "-"' });
    }
    const manifestPath = path.join(contextDir, LAYER_FILE);
    if (!existsSync(manifestPath)) {
      problems.push({ file, message: `the layer folder has no ${LAYER_FILE}`, fix: `add ${LAYER_FILE} with kind and version, or remove the folder` });
      continue;
    }
    const { manifest, kind, problems: manifestProblems } = parseManifest(file, readFileSync(manifestPath, "utf8"));
    problems.push(...manifestProblems);
    const version = manifest === undefined ? undefined : parseLayerVersion(manifest.version);
    if (version !== undefined && "error" in version) {
      problems.push({ file, field: "version", message: version.error, fix: 'write three plain numbers, for example "version: 1.0.5"; the tag becomes 1.0-p5' });
    }
    // The Dockerfile and the context are checked whatever is wrong with layer.yaml: every problem in one pass.
    const dockerfile = path.join(contextDir, DOCKERFILE);
    if (!existsSync(dockerfile)) {
      problems.push({ file: display(dockerfile), message: "the layer folder has no Dockerfile", fix: "add a Dockerfile to the layer folder" });
    } else {
      problems.push(...dockerfileProblems(display(dockerfile), readFileSync(dockerfile, "utf8"), kind === undefined ? undefined : kind === "base"));
    }
    // A symlink out of the context would make the build depend on files Strata cannot see or hash.
    problems.push(...listContext(contextDir, displayRoot).problems);
    if (manifest === undefined) {
      broken.add(name);
      continue;
    }
    treeEntries.push({ name, file, manifest });
    if (version !== undefined && !("error" in version)) entries.push({ name, file, manifest, version, contextDir, dockerfile });
  }
  problems.push(...crossLayerProblems(treeEntries, broken));
  throwIfAny(problems);
  const images = imageNames(entries.map((entry) => ({ name: entry.name, kind: entry.manifest.kind, parent: entry.manifest.parent })));
  const layers: Layer[] = entries.map((entry) => ({
    name: entry.name,
    kind: entry.manifest.kind,
    ...(entry.manifest.parent === undefined ? {} : { parent: entry.manifest.parent }),
    version: entry.version,
    ...(entry.manifest.description === undefined ? {} : { description: entry.manifest.description }),
    contextDir: entry.contextDir,
    dockerfile: entry.dockerfile,
    image: images.get(entry.name) as string,
  }));
  return { dir: catalogDir, layers: topologicalOrder(layers) };
}
