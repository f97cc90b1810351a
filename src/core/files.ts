/**
 * Files written whole: into a temporary file beside the target, then renamed over it, so a reader
 * (another run, another container on the same checkout) sees the old file or the new one, never
 * half of either.
 */
import { randomBytes } from "node:crypto";
import { renameSync, rmSync, writeFileSync } from "node:fs";

/**
 * Writes `content` to `file` whole. The temporary's name has the pid and random bytes: two
 * containers sharing one checkout can have the same pid. A failed write throws, as writeFileSync
 * does, and leaves no temporary behind.
 */
export function writeFileWhole(file: string, content: string | Buffer): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    writeFileSync(temporary, content);
    renameSync(temporary, file);
  } catch (error) {
    removeQuietly(temporary);
    throw error;
  }
}

/** Removes `file` if it can; one it may not remove (a read-only folder) stays, without an error. */
export function removeQuietly(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // Left where it is.
  }
}
