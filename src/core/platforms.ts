/**
 * Multi-platform stacks (`strata:platforms` with two or more entries). Pure.
 *
 * Each catalog layer becomes one build target per platform and one image index:
 * - the per-platform target `<layer>@<os>-<arch>` builds FROM its parent's image for the same
 *   platform, and is pushed to its own repository `<group>/<image>/<os>-<arch>` under the same
 *   tag, so the image's own repository lists only tags that hold indexes;
 * - the index (`strata:index:ImageIndex`, named by the layer) puts those per-platform manifests
 *   into `<group>/<image>` by digest and an OCI image index over them under the tag.
 * Every rule that works on targets (fingerprints, look-ups, the immutable refusal, adoption, CI
 * copies, placement, plan statuses, the summary) then works per platform unchanged, because a
 * per-platform target is an ordinary target with its own name, repository and platform.
 * A stack with one platform keeps its layers' names and repositories as they always were.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { checkoutFile } from "./checkout.js";
import { type Layer } from "./catalog.js";
import { type LayerTarget } from "./plan.js";
import { formatReference, formatRepository } from "./version.js";

/** `os/arch[/variant]`, as Docker and OCI write a platform. */
export const PLATFORM_PATTERN = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;

/** The `platform` object of an OCI index entry. */
export interface OciPlatform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export function parsePlatform(platform: string): OciPlatform {
  const [os = "", architecture = "", variant] = platform.split("/");
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** An OCI `platform` object (an index entry's, or an image config's fields) as `os/arch[/variant]`. */
export function formatPlatform(platform: { readonly os?: string; readonly architecture?: string; readonly variant?: string }): string {
  return [platform.os ?? "?", platform.architecture ?? "?", ...(platform.variant === undefined ? [] : [platform.variant])].join("/");
}

/** `linux/arm64` → `linux-arm64`: a repository path component and a resource name suffix. */
export function platformSlug(platform: string): string {
  return platform.replaceAll("/", "-");
}

/** The separator of a per-platform target's name: `keystone@linux-arm64`. */
const PLATFORM_SEPARATOR = "@";

export function platformLayerName(layer: string, platform: string): string {
  return `${layer}${PLATFORM_SEPARATOR}${platformSlug(platform)}`;
}

/** `keystone@linux-arm64` → `keystone`; a plain layer name is returned as it is. */
export function catalogLayerName(name: string): string {
  const at = name.indexOf(PLATFORM_SEPARATOR);
  return at < 0 ? name : name.slice(0, at);
}

/** Whether a stack builds an index per layer (two or more platforms) rather than one image. */
export function isMultiPlatform(config: { readonly platforms: readonly string[] }): boolean {
  return config.platforms.length > 1;
}

/** One target per layer and platform, each platform's tree parents first, in the order of `platforms`. */
export function platformTargets(targets: readonly LayerTarget[], platforms: readonly string[], registry: string, group: string): LayerTarget[] {
  return platforms.flatMap((platform) => targets.map((target) => forPlatform(target, platform, registry, group)));
}

function forPlatform(target: LayerTarget, platform: string, registry: string, group: string): LayerTarget {
  const slug = platformSlug(platform);
  // The same path indexTargets gives each entry.
  const image = `${target.layer.image}/${slug}`;
  const layer: Layer = {
    ...target.layer,
    name: platformLayerName(target.layer.name, platform),
    image,
    ...(target.layer.parent === undefined ? {} : { parent: platformLayerName(target.layer.parent, platform) }),
  };
  return {
    ...target,
    layer,
    platform,
    repository: formatRepository(registry, group, image),
    repositoryPath: `${group}/${image}`,
    ref: formatReference(registry, group, image, target.tag),
    ...(target.parent === undefined ? {} : { parent: platformLayerName(target.parent, platform) }),
  };
}

/**
 * What a stack builds: its targets as they are (one platform), or one per layer and platform plus
 * one index per layer (two or more).
 */
export function buildTargets(targets: readonly LayerTarget[], config: { readonly platforms: readonly string[]; readonly registry: string; readonly group: string }): { builds: LayerTarget[]; indexes: IndexTarget[] } {
  if (!isMultiPlatform(config)) return { builds: [...targets], indexes: [] };
  return { builds: platformTargets(targets, config.platforms, config.registry, config.group), indexes: indexTargets(targets, config.platforms) };
}

/** One image index to put together: a layer's tag over its per-platform images. */
export interface IndexTarget {
  /** The catalog layer's name (the index resource's name, and its entry in the stack's `layers`). */
  readonly layer: string;
  /** The layer's own target (its repository and tag hold the index). */
  readonly target: LayerTarget;
  /** Each platform's target: its name and repository (`group/image/os-arch`), in the order of `platforms`. */
  readonly entries: readonly { readonly platform: string; readonly name: string; readonly repositoryPath: string }[];
}

export function indexTargets(targets: readonly LayerTarget[], platforms: readonly string[]): IndexTarget[] {
  return targets.map((target) => ({
    layer: target.layer.name,
    target,
    entries: platforms.map((platform) => ({ platform, name: platformLayerName(target.layer.name, platform), repositoryPath: `${target.repositoryPath}/${platformSlug(platform)}` })),
  }));
}

/**
 * The fingerprint of an index: its platforms' fingerprints, in order. Two runs that would put the
 * same per-platform images under the tag have the same one; a platform more or less changes it.
 */
export function indexFingerprint(entries: readonly { readonly platform: string; readonly fingerprint: string }[]): string {
  const hash = createHash("sha256");
  for (const entry of entries) hash.update(`${entry.platform}=${entry.fingerprint}\n`);
  return `sha256:${hash.digest("hex")}`;
}

/** One row of scripts/platforms.tsv, the table of platforms scripts/services.sh reads too. */
export interface PlatformRow {
  /** `os/arch[/variant]`, as Docker and OCI write it. */
  readonly platform: string;
  /** What a kernel reports for it (`uname -m`, `docker info`'s Architecture). */
  readonly machines: readonly string[];
  /** The name binfmt_misc registers Debian's qemu-user-static interpreter under (`qemu-aarch64`). */
  readonly qemu: string;
}

/** Where the table is, from the checkout's root. */
export const PLATFORM_TABLE = "scripts/platforms.tsv";

export function parsePlatformTable(text: string, file: string = PLATFORM_TABLE): PlatformRow[] {
  return text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#")).map((line, index) => {
    const [platform, machines, qemu, ...rest] = line.split("\t");
    if (platform === undefined || !PLATFORM_PATTERN.test(platform) || machines === undefined || qemu === undefined || !/^qemu-[a-z0-9_]+$/.test(qemu) || rest.length > 0) {
      throw new Error(`${file}: row ${index + 1} (${JSON.stringify(line)}) is not <os/arch[/variant]> TAB <machines, or -> TAB <qemu-name>`);
    }
    return { platform, machines: machines === "-" ? [] : machines.split(","), qemu };
  });
}

let table: readonly PlatformRow[] | undefined;

/** The checkout's table, read once. A checkout without it is broken: that is an error, not "no platforms". */
export function platformTable(): readonly PlatformRow[] {
  if (table === undefined) {
    const file = checkoutFile(PLATFORM_TABLE);
    if (file === undefined) throw new Error(`${PLATFORM_TABLE} is not in this checkout of Strata (the table of platforms and their qemu interpreters)`);
    table = parsePlatformTable(readFileSync(file, "utf8"), file);
  }
  return table;
}

/**
 * The architecture an engine reports (`docker info`: x86_64, aarch64) as a platform (linux/amd64,
 * linux/arm64); a machine name the table does not know is kept as it is.
 */
export function enginePlatform(os: string, machine: string): string {
  const row = platformTable().find((entry) => entry.machines.includes(machine));
  return `${os}/${row === undefined ? machine : row.platform.slice(row.platform.indexOf("/") + 1)}`;
}

/** The name binfmt_misc registers qemu-user-static under for a platform (`qemu-aarch64`); undefined for a platform the table does not list. */
export function qemuBinfmtName(platform: string): string | undefined {
  return platformTable().find((entry) => entry.platform === platform)?.qemu;
}

/**
 * Whether a Docker host (`DOCKER_HOST`, an engine of strata:engines; "" for the default socket) is an
 * engine on this machine, whose kernel, and so whose binfmt_misc, is this machine's. A socket is
 * taken as local; tcp:// only to a loopback address; anything else (ssh://, another address) is not.
 */
export function isLocalEngine(host: string): boolean {
  return host === "" || host.startsWith("unix://") || /^tcp:\/\/(127\.[0-9.]+|localhost)(:\d+)?\/?$/.test(host);
}
