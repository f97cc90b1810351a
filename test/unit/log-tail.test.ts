import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { logTail } from "../../src/engine/log-tail.js";

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function growingFile(): string {
  const folder = mkdtempSync(path.join(tmpdir(), "strata-log-tail-"));
  folders.push(folder);
  return path.join(folder, "events.jsonl");
}

describe("logTail (the engine's event log, read as it grows)", () => {
  it("hands over each complete line once, across polls and across reads of a few bytes into the one buffer", () => {
    const file = growingFile();
    const lines: string[] = [];
    // 5 bytes a read: every line below spans reads, and each read overwrites the buffer the one before filled.
    const poll = logTail(file, (line) => lines.push(line), 5);
    poll(); // not written yet
    expect(lines).toEqual([]);
    appendFileSync(file, '{"sequence":1}\n{"seq');
    poll();
    expect(lines).toEqual(['{"sequence":1}']);
    poll(); // nothing new
    expect(lines).toEqual(['{"sequence":1}']);
    appendFileSync(file, 'uence":2}\n\n   \n{"sequence":3}\n');
    poll();
    expect(lines).toEqual(['{"sequence":1}', '{"sequence":2}', '{"sequence":3}']);
  });

  it("keeps a character whose bytes two reads split, and one split across two polls", () => {
    const file = growingFile();
    const lines: string[] = [];
    const poll = logTail(file, (line) => lines.push(line), 4);
    // "ab€" is 61 62 e2 82 ac: the 4-byte reads cut the euro sign after its first two bytes.
    appendFileSync(file, Buffer.from("ab€\n", "utf8"));
    // Then a line whose 4-byte character (U+1F600) the file holds only half of when it is polled.
    const grin = Buffer.from("😀", "utf8");
    appendFileSync(file, Buffer.concat([Buffer.from("x"), grin.subarray(0, 2)]));
    poll();
    expect(lines).toEqual(["ab€"]);
    appendFileSync(file, Buffer.concat([grin.subarray(2), Buffer.from("y\n")]));
    poll();
    expect(lines).toEqual(["ab€", "x😀y"]);
  });

  it("gives every line of a poll that poll's time", () => {
    const file = growingFile();
    const seen: number[] = [];
    const poll = logTail(file, (_line, receivedAt) => seen.push(receivedAt));
    appendFileSync(file, "a\nb\n");
    const before = Date.now();
    poll();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]).toBeGreaterThanOrEqual(before);
  });
});
