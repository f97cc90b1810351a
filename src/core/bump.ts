/**
 * Version bumps that follow content: a layer whose published tag holds other
 * content gets the next patch level, and so does every descendant whose
 * published tag would otherwise have to move, because its base changed.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { LAYER_FILE } from "./catalog.js";
import { type ChangeReason, changeReason, type RegistryView } from "./channel.js";
import { type LayerFingerprint } from "./fingerprint.js";
import { type LayerTarget } from "./plan.js";
import { catalogLayerName } from "./platforms.js";
import { type CiBuild, formatTag, formatVersion, type LayerVersion } from "./version.js";

export type BumpLevel = "patch" | "minor" | "major";
export type BumpReason = ChangeReason | "requested";

export interface Bump {
  readonly layer: string;
  readonly from: LayerVersion;
  readonly to: LayerVersion;
  readonly oldTag: string;
  readonly newTag: string;
  readonly reason: BumpReason;
}

export function nextVersion(version: LayerVersion, level: BumpLevel): LayerVersion {
  if (level === "major") return { major: version.major + 1, minor: 0, patch: 0 };
  if (level === "minor") return { major: version.major, minor: version.minor + 1, patch: 0 };
  return { ...version, patch: version.patch + 1 };
}

export interface BumpRequest {
  readonly targets: readonly LayerTarget[];
  readonly fingerprints: ReadonlyMap<string, LayerFingerprint>;
  readonly view: RegistryView;
  readonly ci?: CiBuild;
  /** Layers to bump by minor or major level whatever their content. */
  readonly requested?: ReadonlyMap<string, Exclude<BumpLevel, "patch">>;
}

/**
 * Which layers to bump, parents first. Pure. A multi-platform stack's targets are per platform
 * (core/platform-targets.ts): each platform is compared on its own, and a catalog layer is bumped once when
 * any of its platforms needs it.
 */
export function planBumps(request: BumpRequest): Bump[] {
  const bumped = new Set<string>();
  const bumps: Bump[] = [];
  for (const target of request.targets) {
    const name = target.layer.name;
    const published = request.view.published.get(name);
    const current = request.fingerprints.get(name);
    const level = request.requested?.get(catalogLayerName(name));
    let reason: BumpReason | undefined;
    if (level !== undefined) reason = "requested";
    else if (target.parent !== undefined && bumped.has(target.parent) && published !== undefined) reason = "parent changed";
    else if (published !== undefined && current !== undefined && published.fingerprint !== current.fingerprint) reason = changeReason(current, published);
    if (reason === undefined) continue;
    const to = nextVersion(target.layer.version, level ?? "patch");
    bumped.add(name);
    if (bumps.some((bump) => bump.layer === catalogLayerName(name))) continue;
    bumps.push({ layer: catalogLayerName(name), from: target.layer.version, to, oldTag: target.tag, newTag: formatTag(to, request.ci), reason });
  }
  return bumps;
}

/** Writes the new versions into each layer.yaml, keeping its comments and layout. */
export function applyBumps(bumps: readonly Bump[], targets: readonly LayerTarget[]): void {
  const dirs = new Map(targets.map((target) => [target.layer.name, target.layer.contextDir] as const));
  for (const bump of bumps) {
    const file = path.join(dirs.get(bump.layer) as string, LAYER_FILE);
    const document = parseDocument(readFileSync(file, "utf8"));
    document.set("version", formatVersion(bump.to));
    writeFileSync(file, document.toString());
  }
}
