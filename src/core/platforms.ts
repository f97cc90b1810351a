/**
 * Platforms: how a platform is written (`os/arch[/variant]`), named in layer names and
 * repositories, and the table of platforms and their qemu names (scripts/platforms.tsv, read by the
 * scripts too). Pure. What a multi-platform stack builds from its layers, a target per layer and
 * platform and an index per layer: platform-targets.ts.
 */
import { readFileSync } from "node:fs";
import { checkoutFile } from "./checkout.js";

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
