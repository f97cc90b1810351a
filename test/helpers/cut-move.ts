/**
 * An `mv` as a kill during a copy leaves it, for scripts' "whole or absent" tests. When the named
 * file goes to another file system (where mv copies instead of renaming), half of it is written
 * under the destination and the script that called mv is killed with SIGKILL, so no clean-up runs.
 * Anything else is passed to the real mv: a rename on one file system cannot be cut short.
 */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Writes the `mv` into `bin` (put it first on PATH); it cuts only files named `fileName`. */
export function writeCutShortMove(bin: string, fileName: string): void {
  const script = `#!/bin/sh
src= dst=
for arg; do case "$arg" in -*) ;; *) if [ -z "$src" ]; then src=$arg; else dst=$arg; fi ;; esac; done
target=$dst; [ -d "$dst" ] && target=$dst/$(basename "$src")
if [ "$(basename "$src")" = '${fileName}' ] && [ "$(stat -c %d "$src")" != "$(stat -c %d "$(dirname "$target")")" ]; then
  head -c "$(( $(stat -c %s "$src") / 2 ))" "$src" > "$target"
  kill -KILL "$PPID"
  exit 137
fi
exec /bin/mv "$@"
`;
  writeFileSync(path.join(bin, "mv"), script);
  chmodSync(path.join(bin, "mv"), 0o755);
}

/**
 * A temp folder on a file system other than `than`'s: /dev/shm (a tmpfs on Linux), where a script's
 * TMPDIR goes so that its mv to `than` copies. Throws when there is none, rather than test nothing.
 */
export function tempOnAnotherFileSystem(than: string): string {
  const folder = mkdtempSync("/dev/shm/strata-test-");
  if (statSync(folder).dev !== statSync(than).dev) return folder;
  rmSync(folder, { recursive: true, force: true });
  throw new Error(`/dev/shm is on the same file system as ${than}: these tests need a TMPDIR on another one, so that mv copies`);
}
