/**
 * An ONNX model read without its weights. Each graph initializer whose raw_data holds at least `minBytes` comes
 * back as external data pointing at those very bytes inside the model file (data_location EXTERNAL, location = the
 * file's name, offset = where its raw_data begins in the file, length), so the model in memory is the graph alone
 * and ONNX Runtime, loading it from memory with the file's folder as the folder of its external data
 * (session.model_external_initializers_file_folder_path), reads the weights from the file where they are. (ONNX
 * Runtime aligns the external data it writes to 4 KiB, 64 KiB on Windows, so that the CPU provider can memory-map
 * it; raw_data's offsets are not aligned, but 1.30 maps from the page below an offset, as seen on Linux, and
 * where it does not map it reads the bytes: either way they never pass through the bytes handed to it.)
 *
 * The file is walked field by field (onnxProto.ts): the model, its graph and each initializer are rebuilt from the
 * other fields' bytes as they are in the file, and a referenced tensor's raw_data is skipped by its length, never
 * read. A U-Net whose weights are inline (a float16 export, 1.7 GB in model.onnx) is thus read in a few MB, where
 * decoding the file took it whole and serializing the edited model a second copy (and ONNX Runtime parsed that
 * into a third). Initializers already external, small ones, and any tensor that is not a graph initializer are
 * kept as they are, except for the location of their external data (below).
 *
 * Tensors elsewhere: a Constant node's `value` (any tensor attribute), the initializers of subgraphs (If branches,
 * Loop and Scan bodies, at any depth), sparse tensors and the nodes of model functions can keep their data in
 * external files too (onnx's save_as_external_data moves them all). Their nodes are walked as well, each node and
 * attribute kept as a byte range unless a tensor in it has external data, whose location then goes the way of the
 * initializers' below. A location must name a file in the model's folder: an absolute one, or one that climbs out
 * with '..', is refused naming the model file and the tensor, before any file it names is looked at (ONNX Runtime
 * refuses them too; rewritten to the file's real folder they would be read from anywhere), as is a drive-relative
 * 'C:w.pb', and a tensor with two 'location' entries (ONNX Runtime 1.30 refuses them; earlier versions read the
 * last non-empty one, where the check here looked at the first). Under a service's model roots (modelRoots.ts), the model file and every external data file
 * must lie inside them, links followed.
 *
 * External data behind links: ONNX Runtime 1.30 refuses external data whose real path (links followed) is outside
 * the model's folder ("External data path escapes model directory"). A Hugging Face cache snapshot links each file
 * to blobs/<hash>; a `--local-dir` download of huggingface_hub before 0.23 links its large files there. The
 * external data locations then come back rewritten to the files the links lead to, in their one real folder, which
 * becomes the folder to load with (planData). ONNX Runtime also runs onnx's checker on nodes' tensors and subgraphs,
 * which refuses external data that is a link wherever it leads ("… but it is a symbolic link"): a model with such
 * tensors behind links is loaded from memory too, every location naming the real file.
 */
import { lstat, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve, win32 } from 'node:path';

import { FormatError, MissingFileError } from '../errors.js';
import { checkedModelFile, isInside, modelsConfined, openModelFile, type CheckedDataFile, type CheckedFiles, type CheckedModelFile, type TensorBytes } from './modelRoots.js';
import { eachField, encodeVarint, FileWindow, type ProtoField } from './onnxProto.js';
import { onnxProto } from '../lazyPackages.js';

type IModel = import('onnx-proto').onnx.IModelProto;

/** Initializers under this many bytes stay inline (biases, shapes): a page, what one memory map takes at least. */
export const MIN_REFERENCED_BYTES = 4096;

export interface ModelWithWeightRefs {
  model: IModel;
  /** `model` serialized: what ONNX Runtime is to load, with `dataFolder`. */
  bytes: Buffer;
  /** The folder ONNX Runtime is to read the model's external data from (its external_initializers folder). */
  dataFolder: string;
  /**
   * Whether ONNX Runtime loads the file as it is, by its path: every external data file it names lies, links
   * followed, inside the folder of the model file, links followed (what 1.30 checks), and none that a node or
   * subgraph tensor names is a link (what onnx's checker refuses).
   */
  byPath: boolean;
  /**
   * Why the model cannot be loaded from `bytes` either (its external data files lie in different folders once
   * their links are followed), or null. Its weights can still be listed; loading it is an error with this message.
   */
  unloadable: string | null;
  /** Initializers now read from the file by reference, and their bytes. */
  referenced: number;
  referencedBytes: number;
  /** The external data files the model names, as it names them (relative to its folder), each once, in file order. */
  locations: string[];
  /**
   * Under a service's model roots, the files checked (the model file, each external data file) as they were: ONNX
   * Runtime opens them again by path, and the load is verified against these after it (verifyUnchanged). Else empty.
   */
  checked: CheckedFiles['files'];
  /**
   * Under a service's model roots, every file the graph in `bytes` names as external data (its location there), as
   * checked: the engine opens each, holds it to the device and inode checked, and hands ONNX Runtime its bytes, so
   * that ONNX Runtime opens no path (the model file itself among them when its inline weights are referred to).
   * Null without roots.
   */
  files: CheckedDataFile[] | null;
}

// field numbers of onnx.proto3
const MODEL_GRAPH = 7;
const MODEL_FUNCTIONS = 25;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_NAME = 3;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_NAME = 1;
const ATTRIBUTE_T = 5;
const ATTRIBUTE_G = 6;
const ATTRIBUTE_TENSORS = 10;
const ATTRIBUTE_GRAPHS = 11;
const ATTRIBUTE_SPARSE_TENSOR = 22;
const ATTRIBUTE_SPARSE_TENSORS = 23;
const SPARSE_VALUES = 1;
const SPARSE_INDICES = 2;
const FUNCTION_NODE = 7;
const TENSOR_DATA_TYPE = 2;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;

/** The output as it is built: bytes made here, and byte ranges [start, end) of the file, read once at the end. */
type Piece = Buffer | [number, number];

const sizeOf = (pieces: readonly Piece[]) => pieces.reduce((a, p) => a + (Array.isArray(p) ? p[1] - p[0] : p.length), 0);

/** A field of the file kept as it is (runs of such fields become one range). */
function keep(out: Piece[], f: ProtoField): void {
  const last = out[out.length - 1];
  if (Array.isArray(last) && last[1] === f.start) last[1] = f.end;
  else out.push([f.start, f.end]);
}

/** Length-delimited field `field` around `inner`. */
const message = (field: number, inner: Piece[]): Piece[] => [encodeVarint(field * 8 + 2), encodeVarint(sizeOf(inner)), ...inner];

type ITensor = import('onnx-proto').onnx.ITensorProto;

/** A tensor as it is in the file, and with its raw_data as a reference into the file (null: it stays as it is). */
interface Tensor {
  asIs: ProtoField;
  byRef: Piece[] | null;
  rawBytes: number;
  /** Its data is external already (weights.pb). */
  external: boolean;
  /** An external one: the tensor without data as it is in the file, and its external_data location (or null). */
  tensor?: ITensor;
  location?: string | null;
  /** Every location it names, when it names more than one (refused). */
  locations?: string[];
  /** A graph initializer of the model's own graph (else a node's or a subgraph's tensor, which onnx's checker sees). */
  top: boolean;
  /**
   * What and where it is, for messages: "tensor 'w'", then "the 'value' attribute", "of Constant node 'c'", "in the
   * 'body' graph", … (filled in as the walk comes back up).
   */
  where: string[];
}

/** A message read field by field: its fields as they are in the file, and those that hold tensors, read in turn. */
interface Message {
  asIs: ProtoField;
  parts: Part[];
}
type Part = ProtoField | Tensor | Message;

const isTensor = (p: Part): p is Tensor => 'byRef' in p;
const isMessage = (p: Part): p is Message => 'parts' in p;

/**
 * A tensor: by reference when it has a raw_data of `minBytes` or more and is not already external, nor a string
 * tensor (whose data is never raw).
 */
async function readTensor(w: FileWindow, t: ProtoField, location: string, minBytes: number, top: boolean): Promise<Tensor> {
  const fields: ProtoField[] = [];
  await eachField(w, t.data, t.end, async (f) => void fields.push(f));
  const varint = async (field: number) => {
    const f = fields.filter((x) => x.field === field && x.wire === 0).pop();
    return f ? (await w.varint(f.data))[0] : undefined;
  };
  // (protobuf: the last occurrence of a non-repeated field is its value)
  const raw = fields.filter((f) => f.field === TENSOR_RAW_DATA && f.wire === 2).pop();
  const external = fields.some((f) => f.field === TENSOR_EXTERNAL_DATA) || (await varint(TENSOR_DATA_LOCATION)) === onnxProto().TensorProto.DataLocation.EXTERNAL;
  const nameField = fields.filter((f) => f.field === TENSOR_NAME && f.wire === 2).pop();
  const name = nameField ? `tensor '${(await w.bytes(nameField.data, nameField.end - nameField.data)).toString('utf8')}'` : 'a tensor';
  const base = { asIs: t, top, where: [name] };
  if (external) {
    // (no raw_data: the message is its name, shape and external_data, a few hundred bytes)
    const tensor = onnxProto().TensorProto.decode(await w.bytes(t.data, t.end - t.data));
    const named = (tensor.externalData ?? []).filter((e) => e.key === 'location').map((e) => e.value ?? '');
    // (two 'location' entries: ONNX Runtime 1.30 refuses them, earlier ones read the last, the check the first)
    if (named.length > 1) return { ...base, byRef: null, rawBytes: 0, external, tensor, location: named[0], locations: named };
    return { ...base, byRef: null, rawBytes: 0, external, tensor, location: named[0] ?? null };
  }
  if (!raw || raw.end - raw.data < minBytes || (await varint(TENSOR_DATA_TYPE)) === onnxProto().TensorProto.DataType.STRING) {
    return { ...base, byRef: null, rawBytes: 0, external };
  }
  const inner: Piece[] = [];
  for (const f of fields) if (f.field !== TENSOR_RAW_DATA) keep(inner, f);
  const length = raw.end - raw.data;
  const ref = onnxProto().TensorProto.encode({
    dataLocation: onnxProto().TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(raw.data) },
      { key: 'length', value: String(length) },
    ],
  }).finish();
  inner.push(Buffer.from(ref.buffer, ref.byteOffset, ref.length));
  return { ...base, byRef: message(t.field, inner), rawBytes: length, external };
}

/** What the walk collects: every tensor that may change (external, or to be referred to), in file order. */
interface Walk {
  w: FileWindow;
  /** The model file's name, which references into it name. */
  self: string;
  minBytes: number;
  tensors: Tensor[];
}

/** Adds `text` to where the tensors found since `from` are. */
function within(walk: Walk, from: number, label: string): void {
  for (const t of walk.tensors.slice(from)) t.where.push(label);
}

const text = async (w: FileWindow, f: ProtoField) => (await w.bytes(f.data, f.end - f.data)).toString('utf8');

/**
 * The message in field `m`, with `read` choosing how each of its fields is read (null: kept as it is); the field
 * itself when nothing in it can change.
 */
async function readMessage(walk: Walk, m: ProtoField, read: (f: ProtoField) => Promise<Part | null>): Promise<Part> {
  const parts: Part[] = [];
  await eachField(walk.w, m.data, m.end, async (f) => void parts.push((f.wire === 2 ? await read(f) : null) ?? f));
  return parts.some((p) => isTensor(p) || isMessage(p)) ? { asIs: m, parts } : m;
}

/** A tensor of a node or subgraph: kept as a byte range unless its data is external (its location may change). */
async function nestedTensor(walk: Walk, f: ProtoField): Promise<Part> {
  const t = await readTensor(walk.w, f, walk.self, Infinity, false);
  if (!t.external) return f;
  walk.tensors.push(t);
  return t;
}

async function readSparse(walk: Walk, s: ProtoField): Promise<Part> {
  return readMessage(walk, s, async (f) => (f.field === SPARSE_VALUES || f.field === SPARSE_INDICES ? nestedTensor(walk, f) : null));
}

/** A graph: the model's own (`top`: its large inline initializers may be referred to) or a subgraph. */
async function readGraph(walk: Walk, g: ProtoField, top: boolean): Promise<Part> {
  return readMessage(walk, g, async (f) => {
    if (f.field === GRAPH_NODE) return readNode(walk, f);
    if (f.field === GRAPH_SPARSE_INITIALIZER) {
      const from = walk.tensors.length;
      const s = await readSparse(walk, f);
      within(walk, from, 'in a sparse initializer');
      return s;
    }
    if (f.field !== GRAPH_INITIALIZER) return null;
    if (!top) {
      const from = walk.tensors.length;
      const t = await nestedTensor(walk, f);
      within(walk, from, 'an initializer');
      return t;
    }
    const t = await readTensor(walk.w, f, walk.self, walk.minBytes, true);
    t.where.push('a graph initializer');
    if (t.external || t.byRef) walk.tensors.push(t);
    return t;
  });
}

/** A node: its attributes' tensors and subgraphs are read, everything else kept. */
async function readNode(walk: Walk, n: ProtoField): Promise<Part> {
  const from = walk.tensors.length;
  let name = '';
  let opType = '';
  const part = await readMessage(walk, n, async (f) => {
    if (f.field === NODE_NAME) name = await text(walk.w, f);
    else if (f.field === NODE_OP_TYPE) opType = await text(walk.w, f);
    else if (f.field === NODE_ATTRIBUTE) return readAttribute(walk, f);
    return null;
  });
  within(walk, from, `of ${opType || 'a'} node${name ? ` '${name}'` : ''}`);
  return part;
}

async function readAttribute(walk: Walk, a: ProtoField): Promise<Part> {
  let name = '';
  const direct: Tensor[] = [];
  const graphs: Tensor[] = [];
  const part = await readMessage(walk, a, async (f) => {
    const from = walk.tensors.length;
    let p: Part | null = null;
    if (f.field === ATTRIBUTE_NAME) name = await text(walk.w, f);
    else if (f.field === ATTRIBUTE_T || f.field === ATTRIBUTE_TENSORS) p = await nestedTensor(walk, f);
    else if (f.field === ATTRIBUTE_SPARSE_TENSOR || f.field === ATTRIBUTE_SPARSE_TENSORS) p = await readSparse(walk, f);
    else if (f.field === ATTRIBUTE_G || f.field === ATTRIBUTE_GRAPHS) {
      p = await readGraph(walk, f, false);
      graphs.push(...walk.tensors.slice(from));
      return p;
    }
    direct.push(...walk.tensors.slice(from));
    return p;
  });
  for (const t of direct) t.where.push(`the '${name}' attribute`);
  for (const t of graphs) t.where.push(`in the '${name}' graph`);
  return part;
}

async function readFunction(walk: Walk, fn: ProtoField): Promise<Part> {
  const from = walk.tensors.length;
  let name = '';
  const part = await readMessage(walk, fn, async (f) => {
    if (f.field === 1) name = await text(walk.w, f); // FunctionProto.name
    return f.field === FUNCTION_NODE ? readNode(walk, f) : null;
  });
  within(walk, from, `in function '${name}'`);
  return part;
}

async function assemble(fh: FileHandle, pieces: readonly Piece[]): Promise<Buffer> {
  const out = Buffer.alloc(sizeOf(pieces));
  let at = 0;
  for (const p of pieces) {
    if (Array.isArray(p)) {
      const n = p[1] - p[0];
      const { bytesRead } = await fh.read(out, at, n, p[0]);
      if (bytesRead !== n) throw new Error(`truncated at byte ${p[0] + bytesRead}`);
      at += n;
    } else {
      p.copy(out, at);
      at += p.length;
    }
  }
  return out;
}

/**
 * The files the graph loaded from bytes names (its locations, relocated where planData renamed them, and the model
 * file itself, `self`, when its inline weights are referred to), each as it was checked. A location whose file is
 * missing is a MissingFileError here (ONNX Runtime, given no path, would not name it).
 */
function checkedDataFiles(
  path: string,
  self: string,
  model: { real: string; checked: CheckedModelFile } | null,
  data: Map<string, { what: string; checked: CheckedModelFile | 'missing' }>,
  relocated: Map<string, string> | undefined,
  furthest: Map<string, TensorBytes>,
): CheckedDataFile[] {
  const files = new Map<string, CheckedDataFile>();
  if (model) files.set(self, { location: self, path: model.checked.real, dev: model.checked.dev, ino: model.checked.ino, what: 'the model file' });
  for (const [l, { what, checked: c }] of data) {
    if (c === 'missing') throw new MissingFileError(`${path}: ${what} does not exist (expected beside ${basename(path)})`);
    const location = relocated?.get(l) ?? l;
    const t = furthest.get(l);
    const was = files.get(location);
    if (!was) files.set(location, { location, path: c.real, dev: c.dev, ino: c.ino, what, ...(t ? { furthest: t } : {}) });
    // (two locations relocated to one file: the tensor that needs the furthest of its bytes, whichever named it)
    else if (t && (!was.furthest || t.offset + t.length > was.furthest.offset + was.furthest.length)) was.furthest = t;
  }
  return [...files.values()];
}

/** `path` is `folder` or inside it (both absolute, links followed). */
export { isInside };

/** A file's real path, or null when it is missing (ONNX Runtime then names it when it loads the model). */
const realOrNull = (path: string) => realpath(path).catch(() => null);

/** Whether the file at `path` is a link (false when it is missing). */
const isLink = (path: string) => lstat(path).then((s) => s.isSymbolicLink(), () => false);

/** Where the model's external data files lie, links followed, and the folder to load the model with. */
interface DataPlan {
  /** location as the model names it -> as it is to name it (only those that change). */
  relocated: Map<string, string>;
  folder: string;
  byPath: boolean;
  unloadable: string | null;
}

/**
 * Why an external data location is refused (null: it names a file in the model's folder, as ONNX requires). An
 * absolute path, or one that climbs out with '..', could name any file on the machine: ONNX Runtime refuses them,
 * and rewritten to their real folder (planData) they would be read.
 */
function locationProblem(location: string): string | null {
  if (location.length === 0) return 'an empty location';
  // (a drive-relative 'C:foo' is not absolute to win32.isAbsolute, but names a folder of drive C: all the same)
  if (isAbsolute(location) || win32.isAbsolute(location) || /^[a-zA-Z]:/.test(location)) return 'an absolute path';
  if (location.split(/[\\/]/).includes('..')) return "a path that climbs out of the model's folder with '..'";
  return null;
}

/** The errors that refuse a location (locationProblem), for externalDataRefusal. */
const refusals = new WeakSet<Error>();

/**
 * The external data files of the model at `path` (absolute, in its folder as the model names them: weights.pb), each
 * once; none for a model whose weights are all inside it. Reads the model's graph (readModelWithWeightRefs).
 */
export async function externalDataFiles(path: string): Promise<string[]> {
  const { locations } = await readModelWithWeightRefs(path, { minBytes: Infinity });
  return locations.map((l) => resolve(dirname(path), l));
}

/**
 * The refusal of the model's first external data location outside its folder, or of an external data file too short
 * for its tensors (a FormatError naming the file and the tensor), or null: for a model ONNX Runtime failed to load by
 * its path, whose own message for a node's or subgraph's tensor comes as an invalid model, and for a short file names
 * neither file nor model. Reads the model's graph (readModelWithWeightRefs).
 */
export async function externalDataRefusal(path: string): Promise<FormatError | null> {
  try {
    await readModelWithWeightRefs(path);
    return null;
  } catch (e) {
    return e instanceof FormatError && refusals.has(e) ? e : null;
  }
}

/**
 * The folder ONNX Runtime is to read the external data from, for a model read from `path` (in `folder`, links
 * followed `real`), whose external tensors name `locations` (`nested`: those that tensors of nodes and subgraphs
 * name). ONNX Runtime resolves a location against the model's folder, follows links and refuses a result outside
 * that folder (for a model loaded by path, the real model file's folder; from bytes, the folder it is given); onnx's
 * checker, which it runs on nodes' tensors and subgraphs, refuses a location that is a link. Files inside the model's
 * folder keep their names unless such a tensor names them through a link; the others are named as they are in their
 * real folder, which must then be one for all of them.
 */
async function planData(path: string, folder: string, real: string, locations: Set<string>, nested: Set<string>): Promise<DataPlan> {
  const folderReal = await realpath(folder);
  const files = new Map<string, string>(); // location -> real path
  for (const l of locations) {
    const r = await realOrNull(resolve(folder, l));
    if (r) files.set(l, r);
  }
  let nestedLinks = false;
  for (const l of nested) if (await isLink(resolve(folder, l))) nestedLinks = true;
  const byPath = !nestedLinks && [...files.values()].every((r) => isInside(dirname(real), r));
  if (!nestedLinks && [...files.values()].every((r) => isInside(folderReal, r))) return { relocated: new Map(), folder, byPath, unloadable: null };
  const folders = [...new Set([...files.values()].map((r) => dirname(r)))];
  if (folders.length > 1) {
    const list = [...files].map(([l, r]) => `${l} -> ${r}`).join(', ');
    const unloadable =
      `${path}: its external data files lie in different folders once their links are followed (${list}), and ONNX Runtime ` +
      `reads a model's external data from one folder: copy them into one folder (e.g. \`cp -L\` them beside ${basename(path)})`;
    return { relocated: new Map(), folder, byPath, unloadable };
  }
  return { relocated: new Map([...files].map(([l, r]) => [l, basename(r)])), folder: folders[0], byPath, unloadable: null };
}

/** Bytes per element of the fixed-size data types (onnx.proto3 TensorProto.DataType), for a tensor without a 'length'. */
const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2 };

/**
 * The bytes of its file an external tensor needs: its 'offset' (0 when absent) and 'length' (when absent, its
 * element count times its element size, as ONNX Runtime reads it); null when they cannot be told (a string tensor
 * without a length, an entry that is not a number: ONNX Runtime names those).
 */
function tensorBytes(x: Tensor): TensorBytes | null {
  const t = x.tensor!;
  const entry = (key: string) => (t.externalData ?? []).filter((e) => e.key === key).pop()?.value;
  const number = (v: string | null | undefined) => (v !== undefined && v !== null && /^\d+$/.test(v) ? Number(v) : null);
  const offset = entry('offset') === undefined ? 0 : number(entry('offset'));
  let length = number(entry('length'));
  if (entry('length') === undefined) {
    const size = ELEMENT_BYTES[t.dataType ?? 0];
    // (a negative dim: ONNX Runtime names it)
    const dims = (t.dims ?? []).map(Number);
    length = size === undefined || dims.some((d) => !(d >= 0)) ? null : dims.reduce<number>((n, d) => n * d, size);
  }
  if (offset === null || length === null || !(length >= 0) || !Number.isSafeInteger(offset + length)) return null;
  // (an unnamed one, a Constant node's `value` moved out by onnx's convert_attribute=True: named by where it is)
  return t.name ? { tensor: t.name, offset, length } : { tensor: '', where: x.where.slice(1).join(' ') || 'in the graph', offset, length };
}

/** A tensor in messages: "tensor 'w'", or "an unnamed tensor (the 'value' attribute of Constant node 'c')". */
export const tensorWords = (t: TensorBytes) => (t.tensor ? `tensor '${t.tensor}'` : `an unnamed tensor (${t.where ?? 'in the graph'})`);

/**
 * The words of an external data file too short for a tensor (checked_file.h short_file_message's, the engine's when
 * the file it opens is shorter than when it was read here): `model`, the tensor, the bytes it needs, the file.
 */
export function shortFileMessage(model: string, t: TensorBytes, location: string, size: number): string {
  return (
    `${model}: ${tensorWords(t)} needs bytes ${t.offset}..${t.offset + t.length} of '${location}', which has ${size} bytes ` +
    `(truncated or the wrong file): copy the model's files again, replacing a file by renaming a complete copy over it`
  );
}

/**
 * For each external data location, the tensor that needs its furthest bytes; refuses (FormatError naming the model,
 * the tensor and the file) a file shorter than that. `sizeOf` gives a location's file size (null: missing, which the
 * load names). ONNX Runtime's own refusal of such a file is an internal-looking failure (a service's 500).
 */
async function checkDataLengths(path: string, external: readonly Tensor[], sizeOf: (location: string) => Promise<number | null>): Promise<Map<string, TensorBytes>> {
  const furthest = new Map<string, TensorBytes>();
  for (const x of external) {
    const b = x.location && x.tensor ? tensorBytes(x) : null;
    const was = b && furthest.get(x.location!);
    if (b && (!was || b.offset + b.length > was.offset + was.length)) furthest.set(x.location!, b);
  }
  for (const [location, t] of furthest) {
    const size = await sizeOf(location);
    if (size === null || t.offset + t.length <= size) continue;
    const e = new FormatError(shortFileMessage(path, t, location, size), { path, field: tensorWords(t) });
    refusals.add(e); // (externalDataRefusal: what a load by path that ONNX Runtime refused is told)
    throw e;
  }
  return furthest;
}

/** An external tensor with its location renamed, as the field it was. */
function relocatedTensor(x: Tensor, location: string): Piece[] {
  const tensor = x.tensor!;
  tensor.externalData = tensor.externalData!.map((e) => (e.key === 'location' ? { key: 'location', value: location } : e));
  const bytes = onnxProto().TensorProto.encode(tensor).finish();
  return message(x.asIs.field, [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)]);
}

/** A part as it is to be written: tensors referred to or relocated, messages around changed parts rebuilt. */
function emit(out: Piece[], p: Part, byRef: boolean, relocated: Map<string, string> | undefined): void {
  if (isTensor(p)) {
    const to = p.location ? relocated?.get(p.location) : undefined;
    if (byRef && p.byRef) out.push(...p.byRef);
    else if (to !== undefined) out.push(...relocatedTensor(p, to));
    else keep(out, p.asIs);
  } else if (isMessage(p)) {
    const inner: Piece[] = [];
    for (const q of p.parts) emit(inner, q, byRef, relocated);
    // (unchanged: one range, the message's own bytes)
    if (inner.length === 1 && Array.isArray(inner[0]) && inner[0][0] === p.asIs.data && inner[0][1] === p.asIs.end) keep(out, p.asIs);
    else out.push(...message(p.asIs.field, inner));
  } else keep(out, p);
}

/**
 * The model at `path` with its large inline weights as references into the file (see the file's head), and the
 * folder to load it with (ONNX Runtime's external data folder). `what` names the model in errors ('U-Net').
 *
 * The folder is the model's own, except where links lead elsewhere (Hugging Face's cache links each file of a
 * snapshot to its blob; ONNX Runtime 1.30 refuses external data whose real path is outside the folder, "External
 * data path escapes model directory"): a model with external data files behind such links is loaded from their
 * real folder, its locations naming the files there (planData), those of every tensor, a graph initializer or a
 * node's or subgraph's; a model.onnx that is a link has its inline weights referred to in the linked file, in its
 * own folder. Inline weights are referred to only when the model file lies in the folder loaded with; otherwise
 * they stay inline, as the whole file used to. An external data location outside the model's folder (absolute, or
 * with '..') is a FormatError naming the file and the tensor.
 */
export async function readModelWithWeightRefs(path: string, options: { what?: string; minBytes?: number } = {}): Promise<ModelWithWeightRefs> {
  return (await readWithWeightRefs(path, options, false))!;
}

/**
 * Under model roots (a service's): the refusal of the model at `path` whose external data lie, links followed,
 * outside them, or whose locations are refused (absolute, '..'), as readModelWithWeightRefs and so a load would
 * refuse it, its message; null when they pass, when no roots apply, or when the file is missing or unreadable (a
 * preflight names those otherwise). Walks the graph only: nothing is assembled or decoded.
 */
export async function externalDataRootsProblem(path: string, what = 'model'): Promise<string | null> {
  if (!modelsConfined()) return null;
  try {
    await readWithWeightRefs(path, { what, minBytes: Infinity }, true);
    return null;
  } catch (e) {
    if (e instanceof FormatError && (refusals.has(e) || e.field !== undefined)) return e.message;
    return null;
  }
}

/** Each model file's external data refusal under model roots (externalDataRootsProblem), in order. */
export async function externalDataProblems(paths: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const p of paths) {
    const problem = await externalDataRootsProblem(p);
    if (problem) problems.push(problem);
  }
  return problems;
}

/** readModelWithWeightRefs; `checkOnly`: returns null once the external data's locations and files are checked. */
async function readWithWeightRefs(path: string, options: { what?: string; minBytes?: number }, checkOnly: boolean): Promise<ModelWithWeightRefs | null> {
  const what = options.what ?? 'model';
  const minBytes = options.minBytes ?? MIN_REFERENCED_BYTES;
  const folder = resolve(dirname(path));
  // (a service's model roots: the file ONNX Runtime would read, links followed, inside them, checked before anything
  // of it is looked at, a link out refused alike whether or not its target exists; read from the very file checked)
  const checked: CheckedFiles['files'] = [];
  const opened = await openModelFile(path, 'the model file').catch((e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MissingFileError(`${path}: no ${what} model (expected an SD 1.x ONNX folder with ${basename(dirname(path))}/model.onnx)`);
    throw e instanceof FormatError ? e : new FormatError(`${path}: not a readable ONNX model (${(e as Error).message})`);
  });
  const fh = opened.handle;
  if (opened.checked !== null) checked.push({ named: path, what: 'the model file', model: path, checked: opened.checked });
  try {
    const real = opened.real;
    const linkedAway = dirname(real) !== (await realpath(folder));
    const w = new FileWindow(fh, (await fh.stat()).size);
    const walk: Walk = { w, self: basename(real), minBytes, tensors: [] };
    // the model's fields, in order: its graph and functions read, the others kept as they are
    const model: Part[] = [];
    await eachField(w, 0, w.size, async (m) => {
      if (m.wire === 2 && m.field === MODEL_GRAPH) model.push(await readGraph(walk, m, true));
      else if (m.wire === 2 && m.field === MODEL_FUNCTIONS) model.push(await readFunction(walk, m));
      else model.push(m);
    });
    const external = walk.tensors.filter((x) => x.external);
    for (const x of external) {
      if (x.locations) {
        const e = new FormatError(
          `${path}: ${x.where[0]} (${x.where.slice(1).join(' ')}) names ${x.locations.length} locations for its external data ` +
            `(${x.locations.map((l) => `'${l}'`).join(', ')}): a tensor's external data has one 'location' entry (ONNX Runtime 1.30 refuses ` +
            `two; earlier versions read the last, which the check of the first would miss). Keep one`,
          { path, field: x.where[0] },
        );
        refusals.add(e);
        throw e;
      }
      const problem = x.location === null || x.location === undefined ? null : locationProblem(x.location);
      if (!problem) continue;
      const e = new FormatError(
        `${path}: ${x.where[0]} (${x.where.slice(1).join(' ')}) keeps its data in '${x.location}', ${problem}: ONNX external data must lie in ` +
          `the model's folder, named relative to it, and such a location is refused (it could name any file). Put the file beside ` +
          `${basename(path)} and name it there`,
        { path, field: x.where[0] },
      );
      refusals.add(e);
      throw e;
    }
    const locations = new Set(external.flatMap((x) => (x.location ? [x.location] : [])));
    // (under roots: each location's file as checked, the one the graph loaded from bytes names)
    const dataChecked = new Map<string, { what: string; checked: CheckedModelFile | 'missing' }>();
    for (const l of locations) {
      const x = external.find((t) => t.location === l)!;
      const what = `${x.where[0]} (${x.where.slice(1).join(' ')}) keeps its data in '${l}', which`;
      const named = [resolve(folder, l), ...(linkedAway ? [resolve(dirname(real), l)] : [])];
      // (loaded by its path, a linked model.onnx has its data read beside the file it links to)
      for (const n of named) {
        const c = await checkedModelFile(n, what, path);
        if (c !== null) checked.push({ named: n, what, model: path, checked: c });
        if (c !== null && !dataChecked.has(l)) dataChecked.set(l, { what, checked: c });
      }
    }
    // every location's file long enough for its tensors (under roots the file checked; the engine checks the file it
    // maps again, which may have changed since)
    const furthest = await checkDataLengths(path, external, async (l) => {
      const c = dataChecked.get(l)?.checked;
      const file = c && c !== 'missing' ? c.real : resolve(folder, l);
      return stat(file).then((s) => (s.isFile() ? s.size : null), () => null);
    });
    if (checkOnly) return null;
    const nested = new Set(external.flatMap((x) => (x.location && !x.top ? [x.location] : [])));
    const plan = locations.size > 0 ? await planData(path, folder, real, locations, nested) : null;
    // the folder to load with: the external data's, else (inline weights only) the model file's own
    const dataFolder = plan ? plan.folder : linkedAway ? dirname(real) : folder;
    const refs = walk.tensors.filter((x) => x.byRef);
    const byRef = refs.length > 0 && (await realpath(dataFolder)) === dirname(real);
    const pieces: Piece[] = [];
    for (const p of model) emit(pieces, p, byRef, plan?.relocated);
    const referenced = byRef ? refs : [];
    const bytes = await assemble(fh, pieces);
    const files = opened.checked === null ? null : checkedDataFiles(path, walk.self, byRef ? { real, checked: opened.checked } : null, dataChecked, plan?.relocated, furthest);
    return {
      model: onnxProto().ModelProto.decode(bytes),
      bytes,
      dataFolder,
      byPath: plan?.byPath ?? true,
      unloadable: plan?.unloadable ?? null,
      referenced: referenced.length,
      referencedBytes: referenced.reduce((a, x) => a + x.rawBytes, 0),
      locations: [...locations],
      checked,
      files,
    };
  } catch (e) {
    if (e instanceof MissingFileError || e instanceof FormatError) throw e;
    throw new FormatError(`${path}: not a readable ONNX model (${(e as Error).message})`);
  } finally {
    await fh.close();
  }
}
