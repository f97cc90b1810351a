/**
 * Reading a file another process is still writing (the engine's `--event-log`), a poll at a time.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";

/** What one read takes at most: an event of a large stack's outputs is a few hundred KiB. */
const READ_BYTES = 1 << 20;

/**
 * A poll that reads the complete lines `file` gained since the last poll and hands each non-blank
 * one to `onLine`, with the poll's time. A line still being written waits for its newline, and a
 * character split across two reads for its last byte. A file not there yet is read from its start
 * once it is. One buffer serves every poll: `strata up` polls ten times a second for the whole run,
 * and a new zero-filled MiB a poll is about 0.2 ms of CPU (0.2 CPU-s of a 100 s cold run; in a
 * 6 s no-op it is lost in the CLI's own noise, 0.65-1.2 CPU-s).
 * `readBytes` is for tests, which split lines and characters across reads with a few bytes.
 */
export function logTail(file: string, onLine: (line: string, receivedAt: number) => void, readBytes = READ_BYTES): () => void {
  let offset = 0;
  let partial = "";
  // Holds the bytes of a character split across two reads (it copies them) until its last byte comes.
  const decoder = new StringDecoder("utf8");
  let buffer: Buffer | undefined;
  return () => {
    let descriptor: number;
    try {
      descriptor = openSync(file, "r");
    } catch {
      return; // not written yet
    }
    try {
      buffer ??= Buffer.allocUnsafe(readBytes);
      const now = Date.now();
      for (let read = readSync(descriptor, buffer, 0, buffer.length, offset); read > 0; read = readSync(descriptor, buffer, 0, buffer.length, offset)) {
        offset += read;
        partial += decoder.write(buffer.subarray(0, read));
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line.trim() !== "") onLine(line, now);
      }
    } finally {
      closeSync(descriptor);
    }
  };
}
