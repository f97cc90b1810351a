/** Builds throwaway catalogs on disk for tests. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface LayerSpec {
  /** layer.yaml text */
  readonly yaml: string;
  /** Dockerfile text; null for no Dockerfile; default: a valid one for the layer's position. */
  readonly dockerfile?: string | null;
  readonly files?: Readonly<Record<string, string>>;
}

export const CHILD_DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n";
export const ROOT_DOCKERFILE = "FROM scratch\nADD rootfs.tar /\n";

// Every catalog of a test file lives under one folder, removed after the file (test/helpers/setup.ts).
let scratchRoot: string | undefined;
function scratch(): string {
  scratchRoot ??= mkdtempSync(path.join(tmpdir(), "strata-test-"));
  return scratchRoot;
}

export function removeScratch(): void {
  if (scratchRoot !== undefined) rmSync(scratchRoot, { recursive: true, force: true });
  scratchRoot = undefined;
}

/** A fresh empty folder, removed with the test file's others when its tests are done (test/helpers/setup.ts, the unit project's setup file). */
export function scratchDir(prefix: string): string {
  return mkdtempSync(path.join(scratch(), `${prefix}-`));
}

/** Writes one folder per layer; returns the catalog folder. */
export function makeCatalog(layers: Readonly<Record<string, LayerSpec>>): string {
  const dir = scratchDir("catalog");
  for (const [name, spec] of Object.entries(layers)) {
    const layerDir = path.join(dir, name);
    mkdirSync(layerDir, { recursive: true });
    writeFileSync(path.join(layerDir, "layer.yaml"), spec.yaml);
    const isRoot = !/^parent:/m.test(spec.yaml);
    if (spec.dockerfile !== null) {
      writeFileSync(path.join(layerDir, "Dockerfile"), spec.dockerfile ?? (isRoot ? ROOT_DOCKERFILE : CHILD_DOCKERFILE));
    }
    for (const [file, text] of Object.entries(spec.files ?? {})) {
      mkdirSync(path.dirname(path.join(layerDir, file)), { recursive: true });
      writeFileSync(path.join(layerDir, file), text);
    }
  }
  return dir;
}

/** A layer.yaml in one line per key. */
export function layerYaml(kind: string, version: string, parent?: string): string {
  return `kind: ${kind}\nversion: ${version}\n${parent === undefined ? "" : `parent: ${parent}\n`}`;
}

/** The design note's keystone and mysql trees. */
export function noteCatalog(): string {
  return makeCatalog({
    debian: { yaml: layerYaml("base", "1.0.0") },
    mos: { yaml: layerYaml("tools", "1.0.0", "debian") },
    ms: { yaml: layerYaml("common-libs", "1.0.0", "mos") },
    "keystone-base": { yaml: layerYaml("dependencies", "1.0.0", "ms") },
    keystone: { yaml: layerYaml("service", "1.0.5", "keystone-base") },
    mysql: { yaml: layerYaml("service", "1.0.0", "mos") },
  });
}
