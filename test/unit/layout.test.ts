/**
 * The folders of src/ depend one way, down (README *Layout*): index.ts; pulumi and cli; engine;
 * registry; core. A folder imports only folders below it, and core imports none of them and no
 * Pulumi package. Read from the sources' import lines, static and dynamic.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../helpers/catalog.js";

/** Each folder's floor: an import may go to its own floor's folder only when it is its own folder. */
const FLOORS: Readonly<Record<string, number>> = { core: 0, registry: 1, engine: 2, pulumi: 3, cli: 3 };

interface Import { readonly file: string; readonly specifier: string }
interface Upward extends Import { readonly from: string; readonly to: string }

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** Every module a file names in an import or export line, or in `import("…")`. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gms), ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((match) => match[1] as string);
  return specifiers.map((specifier) => ({ file, specifier }));
}

/** src/<folder>/… → folder. */
function folderOf(srcDir: string, file: string): string {
  return path.relative(srcDir, file).split(path.sep)[0] as string;
}

/** The imports of src/ that go against the floors, and every import read. */
function layoutOf(srcDir: string): { imports: Import[]; upward: Upward[] } {
  const imports = sources(srcDir).flatMap(importsOf);
  const upward: Upward[] = [];
  for (const entry of imports) {
    const from = folderOf(srcDir, entry.file);
    if (entry.specifier.startsWith(".")) {
      const to = folderOf(srcDir, path.resolve(path.dirname(entry.file), entry.specifier));
      if (to !== from && !((FLOORS[to] ?? Infinity) < (FLOORS[from] ?? -Infinity))) upward.push({ ...entry, from, to });
    } else if (from === "core" && entry.specifier.startsWith("@pulumi/")) {
      upward.push({ ...entry, from, to: entry.specifier });
    }
  }
  return { imports, upward };
}

describe("src/'s folders", () => {
  const srcDir = path.resolve(import.meta.dirname, "../../src");

  it("are the ones the floors name", () => {
    const folders = readdirSync(srcDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    expect(folders).toEqual(Object.keys(FLOORS).sort());
  });

  it("import only folders below them, and core no Pulumi package", () => {
    const { imports, upward } = layoutOf(srcDir);
    // Read, not vacuous: every folder's files import something of another folder.
    for (const folder of ["registry", "engine", "pulumi", "cli"]) {
      expect(imports.some((entry) => folderOf(srcDir, entry.file) === folder && entry.specifier.startsWith("../"))).toBe(true);
    }
    expect(upward.map((entry) => `${path.relative(srcDir, entry.file)} imports ${entry.specifier}`)).toEqual([]);
  });

  it("finds an import up a floor, a dynamic one, one across (cli and pulumi), and Pulumi in core", () => {
    const root = path.join(scratchDir("layout"), "src");
    const files: Record<string, string> = {
      "core/pure.ts": `import * as pulumi from "@pulumi/pulumi";\nexport const x = 1;\n`,
      "registry/client.ts": `import { x } from "../core/pure.js";\nexport const y = x;\n`,
      "engine/flow.ts": `import {\n  y,\n} from "../registry/client.js";\nexport const z = y;\nconst later = () => import("../pulumi/tree.js");\n`,
      "pulumi/tree.ts": `import { z } from "../engine/flow.js";\nexport { w } from "../cli/table.js";\n`,
      "cli/table.ts": `import { z } from "../engine/flow.js";\nexport const w = z;\n`,
    };
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
      writeFileSync(path.join(root, name), text);
    }
    const found = layoutOf(root).upward.map((entry) => `${path.relative(root, entry.file)} → ${entry.to}`).sort();
    expect(found).toEqual(["core/pure.ts → @pulumi/pulumi", "engine/flow.ts → pulumi", "pulumi/tree.ts → cli"]);
  });
});
