/**
 * A reader that walks an ONNX file's protobuf field by field with positioned reads, reporting where each field's
 * bytes lie in the file: the weights of a model (gigabytes of raw_data) can be skipped by their length, or referred
 * to by their offset, instead of being read. (The onnx-proto schema itself, for whole messages, loads on first use:
 * onnxProto() in ts/lazyPackages.ts.)
 */
import type { FileHandle } from 'node:fs/promises';

const CHUNK = 1 << 20;

/** Positioned reads of a file through a 1 MiB window: a graph's nodes are many small messages read in a row. */
export class FileWindow {
  private buf = Buffer.alloc(0);
  private start = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** `n` bytes at `pos`: a view of the window, valid until the next call (copy what is kept). */
  async bytes(pos: number, n: number): Promise<Buffer> {
    if (pos < this.start || pos + n > this.start + this.buf.length) {
      const len = Math.min(Math.max(n, CHUNK), this.size - pos);
      if (len < n) throw new Error(`truncated at byte ${pos} (${n} bytes wanted, ${this.size - pos} left)`);
      const b = Buffer.alloc(len);
      const { bytesRead } = await this.fh.read(b, 0, len, pos);
      if (bytesRead < n) throw new Error(`truncated at byte ${pos}`);
      this.buf = b.subarray(0, bytesRead);
      this.start = pos;
    }
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }

  /** A varint at `pos`: its value (exact below 2^53) and the position after it. */
  async varint(pos: number): Promise<[number, number]> {
    const b = await this.bytes(pos, Math.min(10, this.size - pos));
    let v = 0;
    for (let i = 0; i < b.length; i++) {
      v += (b[i] & 0x7f) * 2 ** (7 * i);
      if ((b[i] & 0x80) === 0) return [v, pos + i + 1];
    }
    throw new Error(`bad varint at byte ${pos}`);
  }
}

/** One field of a message as it lies in the file: [start, end) is the whole field (tag included). */
export interface ProtoField {
  field: number;
  /** Protobuf wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wire: number;
  start: number;
  /** Where the value begins: after the tag, and after the length of a length-delimited field. */
  data: number;
  end: number;
}

/** Calls `visit` for each field of the message in [from, to), in file order. */
export async function eachField(w: FileWindow, from: number, to: number, visit: (f: ProtoField) => Promise<void>): Promise<void> {
  let pos = from;
  while (pos < to) {
    const [tag, p1] = await w.varint(pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    let data = p1;
    let end: number;
    if (wire === 0) [, end] = await w.varint(p1);
    else if (wire === 1) end = p1 + 8;
    else if (wire === 5) end = p1 + 4;
    else if (wire === 2) {
      const [len, p2] = await w.varint(p1);
      data = p2;
      end = p2 + len;
    } else throw new Error(`unsupported wire type ${wire} at byte ${pos}`);
    if (end > to) throw new Error(`field ${field} at byte ${pos} runs past its message (ends at ${end}, the message at ${to})`);
    await visit({ field, wire, start: pos, data, end });
    pos = end;
  }
}

/** A varint's bytes. */
export function encodeVarint(v: number): Buffer {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A length-delimited field `field` holding `parts`, concatenated. */
export function lengthDelimited(field: number, parts: readonly Uint8Array[]): Buffer[] {
  const n = parts.reduce((a, p) => a + p.length, 0);
  return [encodeVarint(field * 8 + 2), encodeVarint(n), ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length))];
}
