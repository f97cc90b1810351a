/**
 * The version policy of the design note:
 *   <registry>/<osRelease>-<productVersion>-<channel>/<image>:<major>.<minor>-p<patch>[-<change>[_<patchset>]]
 */
import semver from "semver";
import { isPathComponent, referenceProblems } from "./reference.js";

export interface LayerVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** Gerrit identity of a CI build: change number and, optionally, patchset number. */
export interface CiBuild {
  readonly change: number;
  readonly patchset?: number;
}

/**
 * Parses a layer's `version`. Only plain `MAJOR.MINOR.PATCH` is accepted: the
 * tag has no room for a pre-release or build part, and semver's own parser
 * would quietly accept `v1.0.0` or `=1.0.0`, so the text must round-trip.
 */
export function parseLayerVersion(text: string): LayerVersion | { error: string } {
  const parsed = semver.parse(text);
  if (parsed === null || parsed.version !== text) {
    return { error: `"${text}" is not MAJOR.MINOR.PATCH (for example 1.0.5)` };
  }
  if (parsed.prerelease.length > 0 || parsed.build.length > 0) {
    return { error: `"${text}" has a pre-release or build part; use plain MAJOR.MINOR.PATCH` };
  }
  return { major: parsed.major, minor: parsed.minor, patch: parsed.patch };
}

export function formatVersion(version: LayerVersion): string {
  return `${version.major}.${version.minor}.${version.patch}`;
}

/** `1.0-p5`, `1.0-p5-19026`, `1.0-p5-19026_2`. */
export function formatTag(version: LayerVersion, ci?: CiBuild): string {
  const release = `${version.major}.${version.minor}-p${version.patch}`;
  return ci === undefined ? release : `${release}-${formatCiBuild(ci)}`;
}

/** What a CI build appends to a release tag (after a dash): `19026`, `19026_2`. */
export function formatCiBuild(ci: CiBuild): string {
  return ci.patchset === undefined ? `${ci.change}` : `${ci.change}_${ci.patchset}`;
}

/** Inverse of formatTag, for tags read back from a registry. */
export function parseTag(tag: string): { version: LayerVersion; ci?: CiBuild } | undefined {
  const match = /^(0|[1-9]\d*)\.(0|[1-9]\d*)-p(0|[1-9]\d*)(?:-([1-9]\d*)(?:_([1-9]\d*))?)?$/.exec(tag);
  if (!match) return undefined;
  // Numbers past 2^53 would be rounded to another's: such a tag is not one Strata wrote.
  if (match.slice(1).some((part) => part !== undefined && !Number.isSafeInteger(Number(part)))) return undefined;
  const version = { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
  if (match[4] === undefined) return { version };
  const ci: CiBuild = match[5] === undefined ? { change: Number(match[4]) } : { change: Number(match[4]), patchset: Number(match[5]) };
  return { version, ci };
}

export interface GroupParts {
  readonly osRelease: string;
  readonly productVersion: string;
  readonly channel: string;
}

/** The note's "image group": `debian8.3-mos9.0-stable`. */
export function formatGroup(parts: GroupParts): string {
  return `${parts.osRelease}-${parts.productVersion}-${parts.channel}`;
}

/** Problems with a group (it must be one valid OCI path component). */
export function groupProblems(parts: GroupParts): string[] {
  const group = formatGroup(parts);
  return isPathComponent(group)
    ? []
    : [`group "${group}" must be lowercase letters and digits joined by ".", "_" or "-"`];
}

export function formatReference(registry: string, group: string, image: string, tag: string): string {
  return `${registry}/${group}/${image}:${tag}`;
}

/** The repository part (no tag): `registry/group/image`. */
export function formatRepository(registry: string, group: string, image: string): string {
  return `${registry}/${group}/${image}`;
}

export { referenceProblems };
