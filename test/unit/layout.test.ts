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

interface Import {
  readonly file: string;
  readonly specifier: string;
  /** Where a network global is used (1-based); imports are named by file. */
  readonly line?: number;
}
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
 * options: a name that resolves to the global itself (bare, in `{ fetch }`, a default, a class's
 * `extends`, as a property of `globalThis`/`global` by name or by string, destructured from them),
 * or one read by name off `globalThis`/`global` whatever their type (`(globalThis as any).fetch`).
 * Not a local binding or a method of the same name, a type (`typeof fetch`: no request is made), a
 * comment or a string. A `declare global` of one in core counts too (its own name is one).
 */
function networkGlobalsIn(files: readonly string[]): Import[] {
  const tsconfig = path.resolve(import.meta.dirname, "../../tsconfig.json");
  const { options } = ts.parseJsonConfigFileContent(ts.readConfigFile(tsconfig, ts.sys.readFile).config, ts.sys, path.dirname(tsconfig), undefined, tsconfig);
  const program = ts.createProgram([...files], { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  // By identity: a `declare global` of the same name merges into this symbol, a local one does not.
  const globals = new Set([...NETWORK_GLOBALS].flatMap((name) => checker.resolveName(name, undefined, ts.SymbolFlags.Value, false) ?? []));
  const isNetworkGlobal = (symbol: ts.Symbol | undefined): boolean => symbol !== undefined && globals.has(symbol);
  const globalObjects = new Set([...GLOBAL_OBJECTS].flatMap((name) => checker.resolveName(name, undefined, ts.SymbolFlags.Value, false) ?? []));
  /** The global object itself, whatever type it is given (`(globalThis as any)`); not a local of its name. */
  const offGlobalObject = (receiver: ts.Expression): boolean => {
    let inner = receiver;
    while (ts.isParenthesizedExpression(inner) || ts.isAsExpression(inner) || ts.isSatisfiesExpression(inner) || ts.isNonNullExpression(inner) || ts.isTypeAssertionExpression(inner)) inner = inner.expression;
    const symbol = ts.isIdentifier(inner) ? checker.getSymbolAtLocation(inner) : undefined;
    return symbol !== undefined && globalObjects.has(symbol);
  };
  /** Where an identifier is a name, not a read of its value: a property's after the dot, a shorthand's or a binding's (the other branches look at those). */
  const namesOnly = (node: ts.Identifier): boolean => {
    const parent = node.parent;
    return (ts.isPropertyAccessExpression(parent) && parent.name === node) || (ts.isShorthandPropertyAssignment(parent) && parent.name === node)
      || (ts.isBindingElement(parent) && (parent.name === node || parent.propertyName === node));
  };
  /** A class's `extends` clause is an expression that is read (`class S extends WebSocket`); `implements` and an interface's `extends` are types. */
  const isClassExtends = (node: ts.Node): boolean => ts.isExpressionWithTypeArguments(node) && ts.isHeritageClause(node.parent) && node.parent.token === ts.SyntaxKind.ExtendsKeyword && ts.isClassLike(node.parent.parent);
  const found: Import[] = [];
  for (const file of files) {
    const source = program.getSourceFile(file);
    if (source === undefined) throw new Error(`${file}: TypeScript did not read it`);
    const visit = (node: ts.Node): void => {
      if (ts.isTypeNode(node) && !isClassExtends(node)) return;
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
      } else if (ts.isIdentifier(node) && !namesOnly(node)) {
        if (isNetworkGlobal(checker.getSymbolAtLocation(node))) name = node.text;
      }
      if (name !== undefined) found.push({ file, specifier: name, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
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
    expect(violations.map((entry) => `${path.relative(srcDir, entry.file)}${entry.line === undefined ? "" : `:${entry.line}`} → ${entry.to} (${entry.specifier})`)).toEqual([]);
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
        "export const untypedByName = (globalThis as any)[\"fetch\"];",
        "export class Socket extends WebSocket {}",
        "export const bound = fetch.bind(globalThis);",
        "export function ask({ with: asker = fetch } = {}) { return asker; }",
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
        "const { fetch: own } = client;",
        "export const ownRead = own(\"c\");",
        "const global = { fetch: (name: string) => name };",
        "export const local = global.fetch(\"d\");",
        "export class Listener implements Fetcher { fetch(): void {} }",
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
    const found = layoutOf(root).violations.map((entry) => `${path.relative(root, entry.file)}${entry.line === undefined ? "" : `:${entry.line}`} → ${entry.to}`).sort();
    expect(found).toEqual([
      "cli/table.ts → a computed module", "core/lazy.ts → dns", "core/lazy.ts → registry",
      "core/online.ts:1 → the global fetch", "core/online.ts:2 → the global WebSocket", "core/online.ts:3 → the global fetch", "core/online.ts:4 → the global EventSource",
      "core/online.ts:5 → the global fetch", "core/online.ts:7 → the global fetch", "core/online.ts:8 → the global WebSocket", "core/online.ts:9 → the global fetch",
      "core/online.ts:10 → the global fetch", "core/online.ts:11 → the global WebSocket", "core/online.ts:12 → the global fetch", "core/online.ts:13 → the global fetch",
      "core/pure.ts → @pulumi/pulumi", "core/pure.ts → node:http",
      "engine/flow.ts → cli", "engine/flow.ts → pulumi", "pulumi/tree.ts → cli", "registry/client.ts → engine",
    ].sort());
  });
});
