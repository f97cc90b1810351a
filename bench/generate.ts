/**
 * Synthetic catalogs of N layers in the shape of a real service tree: one
 * busybox base, a few tools and common-libs layers, and many
 * dependencies/service pairs spread over the common-libs layers. Each layer
 * has a small context and a cheap build step.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface GeneratedLayer {
  readonly name: string;
  readonly kind: string;
  readonly parent?: string;
}

const CHILD_DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE}
ARG BASE_IMAGE
ARG STRATA_VERSION
COPY content.txt /etc/strata/\${STRATA_VERSION}.txt
RUN test -s /etc/strata/\${STRATA_VERSION}.txt
LABEL org.opencontainers.image.version="\${STRATA_VERSION}"
`;

/** The layers for N (N ≥ 8): 1 base, 2 tools, 3 common-libs, the rest dependencies/service pairs. */
export function layerPlan(count: number): GeneratedLayer[] {
  if (count < 8) throw new Error("a synthetic catalog needs at least 8 layers");
  const layers: GeneratedLayer[] = [{ name: "base", kind: "base" }];
  layers.push({ name: "tools-a", kind: "tools", parent: "base" }, { name: "tools-b", kind: "tools", parent: "base" });
  const libs = ["libs-a", "libs-b", "libs-c"];
  libs.forEach((name, index) => layers.push({ name, kind: "common-libs", parent: index === 2 ? "tools-b" : "tools-a" }));
  for (let service = 0; layers.length < count; service++) {
    const lib = libs[service % libs.length] as string;
    const name = `svc${String(service).padStart(3, "0")}`;
    layers.push({ name: `${name}-base`, kind: "dependencies", parent: lib });
    if (layers.length < count) layers.push({ name, kind: "service", parent: `${name}-base` });
  }
  return layers;
}

/**
 * Writes the catalog, a busybox rootfs for the base, and build-order.txt
 * ("layer parent image" per line, parents first) for the plain-script peer.
 * `salt` goes into every context so a new salt means a cold build.
 */
export function generateCatalog(dir: string, count: number, salt: string, rootfsScript: string): GeneratedLayer[] {
  const layers = layerPlan(count);
  const images = new Map<string, string>();
  const order: string[] = [];
  for (const layer of layers) {
    const layerDir = path.join(dir, layer.name);
    mkdirSync(layerDir, { recursive: true });
    writeFileSync(path.join(layerDir, "layer.yaml"), `kind: ${layer.kind}\n${layer.parent === undefined ? "" : `parent: ${layer.parent}\n`}version: 1.0.0\n`);
    if (layer.parent === undefined) {
      writeFileSync(path.join(layerDir, "Dockerfile"), "FROM scratch\nADD rootfs.tar /\nCOPY content.txt /etc/strata/base.txt\n");
      execFileSync(rootfsScript, ["busybox", path.join(layerDir, "rootfs.tar")], { stdio: "ignore" });
    } else {
      writeFileSync(path.join(layerDir, "Dockerfile"), CHILD_DOCKERFILE);
    }
    writeFileSync(path.join(layerDir, "content.txt"), `${layer.name} ${salt}\n${"x".repeat(2048)}\n`);
    const parentImage = layer.parent === undefined ? undefined : images.get(layer.parent);
    const image = parentImage === undefined ? layer.name : layer.kind === "service" ? `${images.get(layers.find((candidate) => candidate.name === layer.parent)?.parent ?? "") ?? ""}-${layer.name}` : `${parentImage}-${layer.name}`;
    images.set(layer.name, image);
    order.push(`${layer.name} ${layer.parent ?? "-"} ${image}`);
  }
  writeFileSync(path.join(dir, "..", "build-order.txt"), `${order.join("\n")}\n`);
  return layers;
}

/** Touches one file of a layer, as a developer would. */
export function touch(dir: string, layer: string, note: string): void {
  writeFileSync(path.join(dir, layer, "content.txt"), `${layer} changed ${note}\n${"y".repeat(2048)}\n`);
}

/** New content in every layer of a catalog (every layer must build again), as a new salt would give. */
export function touchEvery(dir: string, note: string): void {
  for (const layer of readdirSync(dir)) if (existsSync(path.join(dir, layer, "layer.yaml"))) touch(dir, layer, note);
}
