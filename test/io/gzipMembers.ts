/** gzip files as other tools write them: several members (pigz, `cat a.gz b.gz`), BGZF (bgzip), zero padding. */
import { gzipSync } from 'node:zlib';

/** `data` as consecutive gzip members, cut at `cuts` (byte offsets), as `cat a.gz b.gz …` makes. */
export function gzipMembers(data: Uint8Array, cuts: number[]): Buffer {
  const edges = [0, ...cuts, data.length];
  return Buffer.concat(edges.slice(1).map((e, i) => gzipSync(data.subarray(edges[i], e))));
}

/** One BGZF block: a gzip member with the 'BC' extra field holding its own size less one (SAM/BAM spec, 4.1). */
function bgzfBlock(data: Uint8Array): Buffer {
  const g = gzipSync(data);
  const head = Buffer.from(g.subarray(0, 10));
  head[3] |= 4; // FEXTRA
  const extra = Buffer.alloc(8);
  extra.writeUInt16LE(6, 0); // XLEN
  extra.write('BC', 2, 'latin1');
  extra.writeUInt16LE(2, 4); // SLEN
  const block = Buffer.concat([head, extra, g.subarray(10)]);
  block.writeUInt16LE(block.length - 1, 16); // BSIZE - 1
  return block;
}

/** `data` as bgzip writes it: blocks of at most 65,280 input bytes, then the empty end-of-file block. */
export function bgzf(data: Uint8Array, blockBytes = 65280): Buffer {
  const blocks: Buffer[] = [];
  for (let o = 0; o < data.length; o += blockBytes) blocks.push(bgzfBlock(data.subarray(o, o + blockBytes)));
  blocks.push(bgzfBlock(new Uint8Array(0)));
  return Buffer.concat(blocks);
}

/** One gzip member followed by `zeros` zero bytes (a file padded to a block size). */
export function gzipZeroPadded(data: Uint8Array, zeros: number): Buffer {
  return Buffer.concat([gzipSync(data), Buffer.alloc(zeros)]);
}
