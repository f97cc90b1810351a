/**
 * The folders of src/ depend one way, down (README *Layout*): index.ts; pulumi and cli; engine;
 * registry; core. A folder imports only folders below it, and core imports none of them, no
 * Pulumi package and no network module. Read by TypeScript's own pre-processor: static imports
 * and exports (type-only and side-effect ones too) and dynamic `import()`, never comments or strings.
 * Node's network globals need no import; core's uses of them are found by TypeScript's checker.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../helpers/catalog.js";

/** Each folder's floor: an import may go to its own floor's folder only when it is its own folder. */
const FLOORS: Readonly<Record<string, number>> = { core: 0, registry: 1, engine: 2, pulumi: 3, cli: 3 };

/** Node's modules that reach the network, named with or without `node:`: core imports none of them (it decides; others ask). */
const NETWORK_MODULES = new Set(["http", "https", "http2", "net", "tls", "dgram", "dns", "undici"]);

/** The globals that reach the network with no import (Node's types declare them): core uses none of them either. */
const NETWORK_GLOBALS = new Set(["fetch", "WebSocket", "EventSource"]);
/** The names of the global object, off which a global can be read by name. */
const GLOBAL_OBJECTS = new Set(["globalThis", "global"]);

interface Import { readonly file: string; readonly specifier: string }
/** An import against the layout: up a floor, across (cli ↔ pulumi), or Pulumi or the network in core. */
interface Violation extends Import { readonly from: string; readonly to: string }

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/**
 * Every module a file imports or exports from, or names in `import("…")`; an `import()` of a
 * computed name, which no reader can place, is given as its text (and so is never a folder below).
 */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  const named = ts.preProcessFile(text, true, true).importedFiles.map((imported) => ({ file, specifier: imported.fileName }));
  const computed: Import[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && !(node.arguments[0] !== undefined && ts.isStringLiteralLike(node.arguments[0]))) computed.push({ file, specifier: node.getText() });
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true));
  return [...named, ...computed];
}

/**
 * Where core's files use a network global, by TypeScript's checker on the project's own compiler
 * options: a name that resolves to the global itself (bare, in `{ fetch }`, as a property of
 * `globalThis`/`global` by name or by string, destructured from them), or one read by name off
 * `globalThis`/`global` whatever their type (`(globalThis as any).fetch`). Not a local binding or a
 * method of the same name, a type (`typeof fetch`: no request is made), a comment or a string.
 */
function networkGlobalsIn(files: readonly string[]): Import[] {
  const tsconfig = path.resolve(import.meta.dirname, "../../tsconfig.json");
  const { options } = ts.parseJsonConfigFileContent(ts.readConfigFile(tsconfig, ts.sys.readFile).config, ts.sys, path.dirname(tsconfig), undefined, tsconfig);
  const program = ts.createProgram([...files], { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  // By identity: a `declare global` of the same name merges into this symbol, a local one does not.
  const globals = new Set([...NETWORK_GLOBALS].flatMap((name) => checker.resolveName(name, undefined, ts.SymbolFlags.Value, false) ?? []));
  const isNetworkGlobal = (symbol: ts.Symbol | undefined): boolean => symbol !== undefined && globals.has(symbol);
  const offGlobalObject = (receiver: ts.Expression): boolean => {
    let inner = receiver;
    while (ts.isParenthesizedExpression(inner) || ts.isAsExpression(inner) || ts.isSatisfiesExpression(inner) || ts.isNonNullExpression(inner) || ts.isTypeAssertionExpression(inner)) inner = inner.expression;
    return ts.isIdentifier(inner) && GLOBAL_OBJECTS.has(inner.text);
  };
  const found: Import[] = [];
  for (const file of files) {
    const source = program.getSourceFile(file);
    if (source === undefined) throw new Error(`${file}: TypeScript did not read it`);
    const visit = (node: ts.Node): void => {
      if (ts.isTypeNode(node)) return;
      /** The global's name, where this node reads one. */
      let name: string | undefined;
      if (ts.isPropertyAccessExpression(node)) {
        if (NETWORK_GLOBALS.has(node.name.text) && (offGlobalObject(node.expression) || isNetworkGlobal(checker.getSymbolAtLocation(node.name)))) name = node.name.text;
      } else if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression)) {
        const key = node.argumentExpression;
        if (NETWORK_GLOBALS.has(key.text) && (offGlobalObject(node.expression) || isNetworkGlobal(checker.getSymbolAtLocation(key)))) name = key.text;
      } else if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
        const key = node.propertyName ?? node.name;
        if (ts.isIdentifier(key) && NETWORK_GLOBALS.has(key.text) && isNetworkGlobal(checker.getTypeAtLocation(node.parent).getProperty(key.text))) name = key.text;
      } else if (ts.isShorthandPropertyAssignment(node)) {
        if (isNetworkGlobal(checker.getShorthandAssignmentValueSymbol(node))) name = node.name.text;
      } else if (ts.isIdentifier(node) && !ts.isPropertyAccessExpression(node.parent) && !ts.isShorthandPropertyAssignment(node.parent) && !ts.isBindingElement(node.parent)) {
        if (isNetworkGlobal(checker.getSymbolAtLocation(node))) name = node.text;
      }
      if (name !== undefined) found.push({ file, specifier: name });
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

/** src/<folder>/… → folder. */
function folderOf(srcDir: string, file: string): string {
  return path.relative(srcDir, file).split(path.sep)[0] as string;
}

/** The imports of src/ that go against the floors, and every import read. */
function layoutOf(srcDir: string): { imports: Import[]; violations: Violation[] } {
  const files = sources(srcDir);
  const imports = files.flatMap(importsOf);
  const violations: Violation[] = [];
  for (const entry of imports) {
    const from = folderOf(srcDir, entry.file);
    if (entry.specifier.startsWith("import(")) {
      violations.push({ ...entry, from, to: "a computed module" });
    } else if (entry.specifier.startsWith(".")) {
      const to = folderOf(srcDir, path.resolve(path.dirname(entry.file), entry.specifier));
      if (to !== from && !((FLOORS[to] ?? Infinity) < (FLOORS[from] ?? -Infinity))) violations.push({ ...entry, from, to });
    } else if (from === "core" && (entry.specifier.startsWith("@pulumi/") || NETWORK_MODULES.has(entry.specifier.replace(/^node:/, "")))) {
      violations.push({ ...entry, from, to: entry.specifier });
    }
  }
  for (const use of networkGlobalsIn(files.filter((file) => folderOf(srcDir, file) === "core"))) violations.push({ ...use, from: "core", to: `the global ${use.specifier}` });
  return { imports, violations };
}

describe("src/'s folders", () => {
  const srcDir = path.resolve(import.meta.dirname, "../../src");

  it("are the ones the floors name", () => {
    const folders = readdirSync(srcDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    expect(folders).toEqual(Object.keys(FLOORS).sort());
  });

  it("import only folders below them; core no Pulumi package, no network module and no network global", () => {
    const { imports, violations } = layoutOf(srcDir);
    // Read, not vacuous: every folder's files import others of their own folder, and each folder
    // above core imports another folder.
    for (const folder of Object.keys(FLOORS)) {
      expect(imports.some((entry) => folderOf(srcDir, entry.file) === folder && entry.specifier.startsWith("./")), folder).toBe(true);
      if (folder !== "core") expect(imports.some((entry) => folderOf(srcDir, entry.file) === folder && entry.specifier.startsWith("../")), folder).toBe(true);
    }
    expect(violations.map((entry) => `${path.relative(srcDir, entry.file)} → ${entry.to} (${entry.specifier})`)).toEqual([]);
  });

  it("finds each kind of import against the layout, and none in comments or strings", () => {
    const root = path.join(scratchDir("layout"), "src");
    const files: Record<string, string> = {
      "core/pure.ts": `import * as pulumi from "@pulumi/pulumi";\nimport { request } from 'node:http';\nexport const x = 1;\nconst text = \`import { y } from "../engine/flow.js"\`;\n// import("../cli/table.js")\n`,
      "core/lazy.ts": "import dns from \"dns\";\nexport const later = () => import(`../registry/client.js`);\n",
      "core/online.ts": [
        "export const get = (url: string) => fetch(url);",
        "export const open = () => new WebSocket(\"ws://127.0.0.1\");",
        "export const viaGlobal = globalThis.fetch;",
        "export const byName = globalThis[\"EventSource\"];",
        "const { fetch: taken } = globalThis;",
        "export const viaTaken = taken;",
        "export const untyped = (globalThis as any).fetch;",
        "export const fromGlobal = (global)[\"WebSocket\"];",
        "export const api = { fetch };",
        "",
      ].join("\n"),
      "core/offline.ts": [
        "// fetch(url) in a comment, and in a string:",
        "export const said = \"new WebSocket(url)\";",
        "export function read(fetch: (name: string) => string): string { return fetch(\"a\"); }",
        "const client = { fetch: (name: string) => name };",
        "export const asked = client.fetch(\"b\");",
        "export interface Fetcher { fetch(): void }",
        "export type Init = Parameters<typeof fetch>[1];",
        "export function on(socket: WebSocket): WebSocket { return socket; }",
        "export const named = { fetch: read };",
        "",
      ].join("\n"),
      "registry/client.ts": `import { x } from "../core/pure.js";\nimport "../engine/flow.js";\nexport const y = x;\n`,
      "engine/flow.ts": `import {\n  y,\n} from "../registry/client.js";\nimport type { W } from "../cli/table.js";\nexport const z = y;\nconst later = () => import("../pulumi/tree.js");\n`,
      "pulumi/tree.ts": `import { z } from "../engine/flow.js";\nexport * from "../cli/table.js";\n`,
      "cli/table.ts": `import { z } from "../engine/flow.js";\nexport const w = z;\nconst name = "tree";\nexport const tree = () => import(\`../pulumi/\${name}.js\`);\n`,
    };
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
      writeFileSync(path.join(root, name), text);
    }
    const found = layoutOf(root).violations.map((entry) => `${path.relative(root, entry.file)} → ${entry.to}`).sort();
    expect(found).toEqual([
      "cli/table.ts → a computed module", "core/lazy.ts → dns", "core/lazy.ts → registry",
      "core/online.ts → the global EventSource", "core/online.ts → the global WebSocket", "core/online.ts → the global WebSocket",
      "core/online.ts → the global fetch", "core/online.ts → the global fetch", "core/online.ts → the global fetch", "core/online.ts → the global fetch", "core/online.ts → the global fetch",
      "core/pure.ts → @pulumi/pulumi", "core/pure.ts → node:http",
      "engine/flow.ts → cli", "engine/flow.ts → pulumi", "pulumi/tree.ts → cli", "registry/client.ts → engine",
    ]);
  });
});
