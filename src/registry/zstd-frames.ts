/**
 * A zstd stream as RFC 8878 defines it: one or more frames, each a zstd frame or a skippable one,
 * one after another. Node's zstd decompressor (22.15+, up to 22.23 at least) ends a write's output
 * with the end of its first frame and drops the rest of that write without an error (a frame that
 * starts a later write is read), so a layer written as several frames (`zstd:chunked`, one frame per file
 * and skippable frames for its table of contents; pzstd's output) would be read as its first file.
 * This finds where each frame ends from its headers (frame header, then each block's size, then the
 * checksum) and gives each zstd frame a decompressor of its own, in order; skippable frames are
 * dropped, as a decoder does.
 *
 * Fails closed: a frame of neither kind, a reserved bit or block type, or a stream that ends inside
 * a frame is an error, never fewer bytes.
 */
import { Duplex, Transform, type TransformCallback } from "node:stream";
import zlib from "node:zlib";

const ZSTD_MAGIC = 0xfd2fb528;
/** 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MAGIC = 0x184d2a50;

type Step =
  | { readonly kind: "magic" }
  | { readonly kind: "skippable size" }
  | { readonly kind: "skip"; remaining: number }
  | { readonly kind: "frame header descriptor" }
  | { readonly kind: "frame header"; remaining: number; readonly checksum: boolean }
  | { readonly kind: "block header"; readonly checksum: boolean }
  | { readonly kind: "block"; remaining: number; readonly last: boolean; readonly checksum: boolean }
  | { readonly kind: "checksum"; remaining: number };

/** Bytes of each header field that is read whole before it is understood (a magic number, a size, a block header): the steps without a `remaining` count. */
const FIELD_BYTES: Readonly<Record<Exclude<Step, { remaining: number }>["kind"], number>> = { "magic": 4, "skippable size": 4, "frame header descriptor": 1, "block header": 3 };

class ZstdFrames extends Transform {
  #step: Step = { kind: "magic" };
  /** The bytes of the field being read (FIELD_BYTES). */
  #field: number[] = [];
  /** The current frame's decompressor, from its magic number to its end. */
  #frame: Duplex | undefined;
  /** What the current frame's decompressor failed with (it says so once, perhaps between two writes). */
  #frameError: Error | undefined;
  /** A decompressor paused because this stream's reader has not taken what it made (the current frame's, or one ending). */
  #paused: Duplex | undefined;

  constructor(private readonly makeDecompressor: () => Duplex) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#feed(chunk).then(() => callback(), (error: unknown) => callback(error as Error));
  }

  // The reader wants more: a decompressor paused for it goes on (its writes wait while it is paused,
  // and so does the next chunk of the blob: a frame of a few KiB can make GiBs).
  override _read(size: number): void {
    const paused = this.#paused;
    this.#paused = undefined;
    paused?.resume();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#frame?.destroy();
    this.#paused?.destroy();
    callback(error);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#step.kind === "magic" && this.#field.length === 0) callback();
    else callback(new Error(`the zstd stream ends inside a frame (reading its ${this.#step.kind})`));
  }

  async #feed(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const step = this.#step;
      if (!("remaining" in step)) {
        this.#field.push(chunk[at] as number);
        at++;
        if (this.#field.length === FIELD_BYTES[step.kind]) {
          const field = Buffer.from(this.#field);
          this.#field = [];
          await this.#fieldRead(step, field);
        }
        continue;
      }
      const take = Math.min(step.remaining, chunk.length - at);
      if (step.kind !== "skip") await this.#write(chunk.subarray(at, at + take));
      at += take;
      step.remaining -= take;
      if (step.remaining === 0) await this.#partRead(step);
    }
  }

  /** A whole header field has been read: what comes after it. */
  async #fieldRead(step: Step, field: Buffer): Promise<void> {
    if (step.kind === "magic") {
      const magic = field.readUInt32LE(0);
      if (magic === ZSTD_MAGIC) {
        await this.#write(field);
        this.#step = { kind: "frame header descriptor" };
      } else if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
        this.#step = { kind: "skippable size" };
      } else {
        throw new Error(`the zstd stream holds a frame of neither kind (its magic number is 0x${magic.toString(16).padStart(8, "0")})`);
      }
    } else if (step.kind === "skippable size") {
      const size = field.readUInt32LE(0);
      this.#step = size === 0 ? { kind: "magic" } : { kind: "skip", remaining: size };
    } else if (step.kind === "frame header descriptor") {
      const descriptor = field[0] as number;
      if ((descriptor & 0x08) !== 0) throw new Error("a zstd frame header sets its reserved bit");
      await this.#write(field);
      const singleSegment = (descriptor & 0x20) !== 0;
      const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6] as number;
      const dictionaryBytes = [0, 1, 2, 4][descriptor & 0x03] as number;
      const remaining = (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
      const checksum = (descriptor & 0x04) !== 0;
      this.#step = remaining === 0 ? { kind: "block header", checksum } : { kind: "frame header", remaining, checksum };
    } else if (step.kind === "block header") {
      const header = field.readUIntLE(0, 3);
      const last = (header & 1) === 1;
      const type = (header >> 1) & 0x03;
      const size = header >>> 3;
      if (type === 3) throw new Error("a zstd block has the reserved block type");
      await this.#write(field);
      // An RLE block holds one byte, repeated `size` times.
      const remaining = type === 1 ? 1 : size;
      if (remaining > 0) this.#step = { kind: "block", remaining, last, checksum: step.checksum };
      else await this.#blockRead(last, step.checksum);
    }
  }

  /** A part of known size has been read whole. */
  async #partRead(step: Extract<Step, { remaining: number }>): Promise<void> {
    if (step.kind === "skip") this.#step = { kind: "magic" };
    else if (step.kind === "frame header") this.#step = { kind: "block header", checksum: step.checksum };
    else if (step.kind === "block") await this.#blockRead(step.last, step.checksum);
    else await this.#endFrame();
  }

  async #blockRead(last: boolean, checksum: boolean): Promise<void> {
    if (!last) this.#step = { kind: "block header", checksum };
    else if (checksum) this.#step = { kind: "checksum", remaining: 4 };
    else await this.#endFrame();
  }

  #write(bytes: Buffer): Promise<void> {
    if (this.#frame === undefined) {
      const frame = this.makeDecompressor();
      frame.on("data", (data: Buffer) => {
        if (!this.push(data)) {
          frame.pause();
          this.#paused = frame;
        }
      });
      frame.on("error", (error: Error) => {
        this.#frameError ??= error;
      });
      this.#frame = frame;
      this.#frameError = undefined;
    }
    const frame = this.#frame;
    return new Promise((resolve, reject) => {
      if (this.#frameError !== undefined) return reject(this.#frameError);
      // A decompressor that fails on these bytes says so by its error alone: the write's callback never comes.
      const failed = (error: Error): void => reject(error);
      frame.once("error", failed);
      frame.write(bytes, (error) => {
        frame.off("error", failed);
        if (error) reject(this.#frameError ?? error);
        else resolve();
      });
    });
  }

  /** The frame's last byte has been given to its decompressor: all it makes comes out before the next frame starts. */
  #endFrame(): Promise<void> {
    const frame = this.#frame;
    this.#frame = undefined;
    this.#step = { kind: "magic" };
    if (frame === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (this.#frameError !== undefined) return reject(this.#frameError);
      frame.once("end", resolve);
      frame.once("error", reject);
      frame.end();
    });
  }
}

/** Node's zstd decompressor, or undefined on a Node.js before 22.15. */
export function nodeZstd(): (() => Duplex) | undefined {
  return (zlib as { createZstdDecompress?: () => Duplex }).createZstdDecompress;
}

/** Decompresses every frame of a zstd stream, in order (see above). */
export function zstdFramesDecompressor(makeDecompressor: () => Duplex): Duplex {
  return new ZstdFrames(makeDecompressor);
}
