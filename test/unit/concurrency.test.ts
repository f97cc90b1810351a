import { describe, expect, it } from "vitest";
import { mapLimited } from "../../src/core/concurrency.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("mapLimited", () => {
  it("keeps the items' order with at most `limit` tasks in flight", async () => {
    let running = 0;
    let most = 0;
    const results = await mapLimited([5, 1, 4, 2, 3, 0, 6, 2], 3, async (ms) => {
      running++;
      most = Math.max(most, running);
      await sleep(ms * 3);
      running--;
      return ms * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0, 60, 20]);
    expect(most).toBe(3);
  });

  it("starts no task after one has failed, and rejects with that failure", async () => {
    const started: number[] = [];
    const items = Array.from({ length: 64 }, (_, index) => index);
    const failure = await mapLimited(items, 4, async (item) => {
      started.push(item);
      await sleep(item === 0 ? 5 : 20);
      if (item === 0) throw new Error("item 0 failed");
      return item;
    }).then(() => undefined, (error: unknown) => error as Error);
    expect(failure?.message).toBe("item 0 failed");
    // The three already running end; nothing else starts, then or later.
    await sleep(100);
    expect(started).toEqual([0, 1, 2, 3]);
  });
});
