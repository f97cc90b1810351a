/**
 * A zstd stream of many frames (registry/zstd-frames.ts): every zstd frame decompressed in order,
 * skippable frames dropped, whatever the chunks the bytes arrive in; a stream that ends inside a
 * frame, a frame of neither kind, a reserved bit or a damaged frame is an error, never fewer bytes.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { nodeZstd, zstdFramesDecompressor } from "../../src/registry/zstd-frames.js";

type Zstd = typeof zlib & { zstdCompressSync(bytes: Buffer, options?: { params?: Record<number, number> }): Buffer; constants: Record<string, number> };
const z = zlib as Zstd;
const compress = (bytes: Buffer | string, params: Record<number, number> = {}): Buffer => z.zstdCompressSync(Buffer.from(bytes), { params });
const skippable = (magicLow: number, data: Buffer): Buffer => {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50 + magicLow, 0);
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data]);
};

/** The stream's output, fed in chunks of the given sizes (cycled). */
async function decompress(bytes: Buffer, chunkSizes: readonly number[] = [65536]): Promise<Buffer> {
  const zstd = nodeZstd();
  expect(zstd, `Node.js ${process.version} has no zstd (22.15 and later have)`).toBeDefined();
  const chunks: Buffer[] = [];
  for (let at = 0, turn = 0; at < bytes.length; turn++) {
    const size = chunkSizes[turn % chunkSizes.length] as number;
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  const out: Buffer[] = [];
  for await (const piece of Readable.from(chunks).pipe(zstdFramesDecompressor(zstd as NonNullable<typeof zstd>))) out.push(piece as Buffer);
  return Buffer.concat(out);
}

describe("a zstd stream of many frames", () => {
  it("Node's own decompressor reads only the first frame of what it is given (why this exists; should a Node.js read them all, this fails, and the module can go)", () => {
    expect(z.zstdDecompressSync(Buffer.concat([compress("hello "), compress("world")])).toString()).toBe("hello ");
  });

  it("decompresses every frame in order, skippable frames (first, between, last) dropped, in any chunking", async () => {
    const big = randomBytes(300_000); // raw blocks, more than one (a block holds at most 128 KiB)
    const zeros = Buffer.alloc(400_000); // RLE blocks
    const text = Buffer.from("abc".repeat(100_000)); // compressed blocks
    const frames = [
      skippable(0, Buffer.from("table of contents")),
      compress("hello "),
      skippable(15, Buffer.alloc(0)),
      compress(big, { [z.constants.ZSTD_c_checksumFlag as number]: 1 }),
      compress(zeros, { [z.constants.ZSTD_c_contentSizeFlag as number]: 0 }),
      compress(text, { [z.constants.ZSTD_c_checksumFlag as number]: 1, [z.constants.ZSTD_c_contentSizeFlag as number]: 0 }),
      compress(""),
      skippable(7, randomBytes(70_000)),
    ];
    const expected = Buffer.concat([Buffer.from("hello "), big, zeros, text]);
    for (const chunking of [[65536], [3, 7, 1, 4096], [1_000_000]]) {
      expect((await decompress(Buffer.concat(frames), chunking)).equals(expected), `chunks of ${chunking.join(",")}`).toBe(true);
    }
    // Byte by byte, over the first frames (the whole stream so is slow, not different).
    expect(await decompress(Buffer.concat([...frames.slice(0, 3), compress(text.subarray(0, 3000), { [z.constants.ZSTD_c_checksumFlag as number]: 1 })]), [1])).toEqual(Buffer.concat([Buffer.from("hello "), text.subarray(0, 3000)]));
  });

  it("makes no more than its reader takes: a frame of a few KiB that makes 64 MiB waits for it (review 121)", async () => {
    const zstd = nodeZstd() as NonNullable<ReturnType<typeof nodeZstd>>;
    const frame = compress(Buffer.alloc(64 * 1024 * 1024));
    expect(frame.length).toBeLessThan(64 * 1024);
    const decompressor = zstdFramesDecompressor(zstd);
    Readable.from([frame, compress("end")]).pipe(decompressor);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Nothing read yet: what waits is about one buffer's worth, not the frame's output.
    expect(decompressor.readableLength).toBeLessThan(1024 * 1024);
    let total = 0;
    let last: Buffer = Buffer.alloc(0);
    for await (const piece of decompressor) {
      total += (piece as Buffer).length;
      last = piece as Buffer;
    }
    expect(total).toBe(64 * 1024 * 1024 + 3);
    expect(last.subarray(-3).toString()).toBe("end");
  });

  it("an empty stream is empty", async () => {
    expect(await decompress(Buffer.alloc(0))).toEqual(Buffer.alloc(0));
  });

  it("refuses a stream that ends inside a frame, at any byte, a skippable frame's too", async () => {
    const whole = Buffer.concat([compress("hello "), compress("world", { [z.constants.ZSTD_c_checksumFlag as number]: 1 }), skippable(1, Buffer.from("toc"))]);
    for (let end = 1; end < whole.length; end++) {
      const first = compress("hello ").length;
      if (end === first || end === whole.length - 11) continue; // whole frames
      await expect(decompress(whole.subarray(0, end)), `cut at ${end}`).rejects.toThrow(/ends inside a frame/);
    }
  });

  it("refuses a frame of neither kind, a reserved bit, a reserved block type, and a damaged frame", async () => {
    await expect(decompress(Buffer.concat([compress("a"), Buffer.from("PK\u0003\u0004 not zstd")]))).rejects.toThrow(/neither kind \(its magic number is 0x04034b50\)/);
    const reservedBit = compress("a");
    reservedBit[4] = (reservedBit[4] as number) | 0x08;
    await expect(decompress(reservedBit)).rejects.toThrow(/reserved bit/);
    // A single-segment frame of one byte's content size: its first block header follows at 6.
    const frame = compress("abcabcabcabc");
    const descriptor = frame[4] as number;
    const headerEnd = 5 + ((descriptor & 0x20) !== 0 ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]! + [(descriptor & 0x20) !== 0 ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
    const reservedType = Buffer.from(frame);
    reservedType[headerEnd] = (reservedType[headerEnd] as number) | 0x06;
    await expect(decompress(reservedType)).rejects.toThrow(/reserved block type/);
    // The content checksum does not match: zstd's own error, not a short read.
    const damaged = compress("hello world, hello world", { [z.constants.ZSTD_c_checksumFlag as number]: 1 });
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 0xff;
    await expect(decompress(Buffer.concat([damaged, compress("more")]))).rejects.toThrow(/checksum/);
    // A damaged block the decompressor fails on as it is written (it then never answers the write: no hang).
    const corrupt = Buffer.from(compress("abcdefghij".repeat(50)));
    for (let at = 8; at < corrupt.length - 2; at++) corrupt[at] = (corrupt[at] as number) ^ 0x5a;
    await expect(decompress(Buffer.concat([corrupt, compress("more")]))).rejects.toThrow(/corruption/i);
  });
});
