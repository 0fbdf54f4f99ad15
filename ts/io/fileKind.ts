/**
 * What a file is by its first bytes, for the error about a file of another kind given where a reader expected its
 * own (an .npy array as a model, a model as an .npy, an HDF5 file as either): "X.npy: a NumPy .npy array, not a
 * safetensors file" says what went wrong, where "header length 379676406402707 runs past the end" left it to guess.
 * Asked only once a reader has refused the file: a file of the reader's own kind may start like another (a
 * safetensors header length whose low byte is '{').
 */

/** The kinds told apart, each by the bytes it starts with (12 at most: readers have read that much already). */
const KINDS: { kind: string; test: (b: Uint8Array) => boolean }[] = [
  { kind: 'a NumPy .npy array', test: (b) => starts(b, [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]) },
  { kind: 'a zip archive (a NumPy .npz?)', test: (b) => starts(b, [0x50, 0x4b, 0x03, 0x04]) || starts(b, [0x50, 0x4b, 0x05, 0x06]) },
  { kind: 'an HDF5 file (.h5, .hdf5)', test: (b) => starts(b, [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { kind: 'a MATLAB .mat file', test: (b) => text(b, 0, 7) === 'MATLAB ' },
  { kind: 'a PNG image', test: (b) => starts(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { kind: 'a gzip-compressed file (a .nii.gz?)', test: (b) => starts(b, [0x1f, 0x8b]) },
  // sizeof_hdr, little- or big-endian
  { kind: 'a NIfTI image (.nii)', test: (b) => b.length >= 4 && [348, 540].some((n) => int32(b, true) === n || int32(b, false) === n) },
  // an 8-byte little-endian header length within reason, then the JSON header's '{'
  { kind: 'a safetensors file (a brainlatent model?)', test: (b) => b.length >= 9 && b[8] === 0x7b && b[5] === 0 && b[6] === 0 && b[7] === 0 },
  { kind: 'a JSON text file', test: (b) => /^\s*[{[]/.test(text(b, 0, b.length)) },
];

function starts(b: Uint8Array, magic: number[]): boolean {
  return b.length >= magic.length && magic.every((m, i) => b[i] === m);
}

function text(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, Math.min(to, b.length)));
}

function int32(b: Uint8Array, little: boolean): number {
  return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, little);
}

/** What the file whose first bytes are `head` is ('a NumPy .npy array', …), or null when none of the kinds known. */
export function fileKindOf(head: Uint8Array): string | null {
  return KINDS.find((k) => k.test(head))?.kind ?? null;
}

/** The first bytes readers pass to fileKindOf. */
export const FILE_KIND_BYTES = 12;
