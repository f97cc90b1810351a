/**
 * Mounts under a folder, for tests whose scratch folders may have them (debootstrap's /proc, a
 * dockerd's overlays and network namespaces): a folder is removed only when nothing is mounted
 * under it, as Node's rmSync would delete through a mount.
 */
import { readFileSync, realpathSync, rmSync } from "node:fs";

/**
 * Mount points under `folder` as the process `pid` sees them (`self`: this one's own); none once it
 * has ended (this process's own table not read is an error). The table names physical paths and
 * writes a space, a tab, a newline or a backslash as an octal escape.
 */
export function mountsUnder(folder: string, pid: number | "self" = "self"): string[] {
  let table: string;
  try {
    table = readFileSync(`/proc/${pid}/mounts`, "utf8");
  } catch (error) {
    // Another process's table is gone with it; this one's own must be read (else removeScratch would delete through mounts it did not see).
    if (pid === "self") throw error;
    return [];
  }
  let physical: string;
  try {
    physical = realpathSync(folder);
  } catch {
    return [];
  }
  return table.split("\n")
    .map((line) => (line.split(" ")[1] ?? "").replace(/\\([0-7]{3})/g, (_escape, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))))
    .filter((point) => point.startsWith(`${physical}/`));
}

/**
 * Removes a scratch folder unless something is mounted under it: then it throws, naming the mounts,
 * and removes nothing. `unmount` (a test's own mounts, or what a script it killed left) is tried on
 * each first, deepest first.
 */
export function removeScratch(folder: string, unmount?: (point: string) => void): void {
  if (unmount !== undefined) for (const point of mountsUnder(folder).sort().reverse()) unmount(point);
  const left = mountsUnder(folder);
  if (left.length > 0) throw new Error(`${folder} still has mounts under it, so it is not removed: ${left.join(", ")}`);
  rmSync(folder, { recursive: true, force: true });
}
