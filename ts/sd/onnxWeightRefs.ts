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
 * into a third). Initializers already external, small ones, and any tensor that is not a graph initializer (a
 * Constant node's value) are kept as they are.
 *
 * External data behind links: ONNX Runtime 1.30 refuses external data whose real path (links followed) is outside
 * the model's folder ("External data path escapes model directory"). A Hugging Face cache snapshot links each file
 * to blobs/<hash>; a `--local-dir` download of huggingface_hub before 0.23 links its large files there. The
 * external data locations then come back rewritten to the files the links lead to, in their one real folder, which
 * becomes the folder to load with (planData).
 */
import { existsSync } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';

import { FormatError, MissingFileError } from '../errors.js';
import { eachField, encodeVarint, FileWindow, onnx, type ProtoField } from './onnxProto.js';

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
   * followed, inside the folder of the model file, links followed (what 1.30 checks).
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
}

// field numbers of onnx.proto3
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_DATA_TYPE = 2;
const TENSOR_RAW_DATA = 9;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;

/** The output as it is built: bytes made here, and byte ranges [start, end) of the file, read once at the end. */
type Piece = Buffer | [number, number];
/** A model's pieces, with a number where a graph goes (it is put together once every initializer is known). */
type ModelPiece = Piece | number;

const sizeOf = (pieces: readonly Piece[]) => pieces.reduce((a, p) => a + (Array.isArray(p) ? p[1] - p[0] : p.length), 0);

/** A field of the file kept as it is (runs of such fields become one range). */
function keep(out: ModelPiece[], f: ProtoField): void {
  const last = out[out.length - 1];
  if (Array.isArray(last) && last[1] === f.start) last[1] = f.end;
  else out.push([f.start, f.end]);
}

/** Length-delimited field `field` around `inner`. */
const message = (field: number, inner: Piece[]): Piece[] => [encodeVarint(field * 8 + 2), encodeVarint(sizeOf(inner)), ...inner];

/** An initializer as it is in the file, and with its raw_data as a reference into the file (null: it stays as it is). */
interface Initializer {
  asIs: ProtoField;
  byRef: Piece[] | null;
  rawBytes: number;
  /** Its data is external already (weights.pb). */
  external: boolean;
  /** An external one: the tensor without data as it is in the file, and its external_data location (or null). */
  tensor?: ITensor;
  location?: string | null;
}

type ITensor = import('onnx-proto').onnx.ITensorProto;

/**
 * A graph initializer: by reference when it has a raw_data of `minBytes` or more and is not already external, nor a
 * string tensor (whose data is never raw).
 */
async function initializer(w: FileWindow, t: ProtoField, location: string, minBytes: number): Promise<Initializer> {
  const fields: ProtoField[] = [];
  await eachField(w, t.data, t.end, async (f) => void fields.push(f));
  const varint = async (field: number) => {
    const f = fields.filter((x) => x.field === field && x.wire === 0).pop();
    return f ? (await w.varint(f.data))[0] : undefined;
  };
  // (protobuf: the last occurrence of a non-repeated field is its value)
  const raw = fields.filter((f) => f.field === TENSOR_RAW_DATA && f.wire === 2).pop();
  const external = fields.some((f) => f.field === TENSOR_EXTERNAL_DATA) || (await varint(TENSOR_DATA_LOCATION)) === onnx.TensorProto.DataLocation.EXTERNAL;
  if (external) {
    // (no raw_data: the message is its name, shape and external_data, a few hundred bytes)
    const tensor = onnx.TensorProto.decode(await w.bytes(t.data, t.end - t.data));
    const location = tensor.externalData?.find((e) => e.key === 'location')?.value ?? null;
    return { asIs: t, byRef: null, rawBytes: 0, external, tensor, location };
  }
  if (!raw || raw.end - raw.data < minBytes || (await varint(TENSOR_DATA_TYPE)) === onnx.TensorProto.DataType.STRING) {
    return { asIs: t, byRef: null, rawBytes: 0, external };
  }
  const inner: Piece[] = [];
  for (const f of fields) if (f.field !== TENSOR_RAW_DATA) keep(inner, f);
  const length = raw.end - raw.data;
  const ref = onnx.TensorProto.encode({
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(raw.data) },
      { key: 'length', value: String(length) },
    ],
  }).finish();
  inner.push(Buffer.from(ref.buffer, ref.byteOffset, ref.length));
  return { asIs: t, byRef: message(GRAPH_INITIALIZER, inner), rawBytes: length, external };
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

/** `path` is `folder` or inside it (both absolute, links followed). */
export function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** A file's real path, or null when it is missing (ONNX Runtime then names it when it loads the model). */
const realOrNull = (path: string) => realpath(path).catch(() => null);

/** Where the model's external data files lie, links followed, and the folder to load the model with. */
interface DataPlan {
  /** location as the model names it -> as it is to name it (only those that change). */
  relocated: Map<string, string>;
  folder: string;
  byPath: boolean;
  unloadable: string | null;
}

/**
 * The folder ONNX Runtime is to read the external data from, for a model read from `path` (in `folder`, links
 * followed `real`), whose external initializers name `locations`. ONNX Runtime resolves a location against the
 * model's folder, follows links and refuses a result outside that folder (for a model loaded by path, the real
 * model file's folder; from bytes, the folder it is given). Files inside the model's folder keep their names; files
 * that links lead elsewhere are named as they are in their real folder, which must then be one for all of them.
 */
async function planData(path: string, folder: string, real: string, locations: Set<string>): Promise<DataPlan> {
  const folderReal = await realpath(folder);
  const files = new Map<string, string>(); // location -> real path
  for (const l of locations) {
    const r = await realOrNull(resolve(folder, l));
    if (r) files.set(l, r);
  }
  const byPath = [...files.values()].every((r) => isInside(dirname(real), r));
  if ([...files.values()].every((r) => isInside(folderReal, r))) return { relocated: new Map(), folder, byPath, unloadable: null };
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

/** An external initializer with its location renamed, as a graph field. */
function relocatedInitializer(x: Initializer, location: string): Piece[] {
  const tensor = x.tensor!;
  tensor.externalData = tensor.externalData!.map((e) => (e.key === 'location' ? { key: 'location', value: location } : e));
  const bytes = onnx.TensorProto.encode(tensor).finish();
  return message(GRAPH_INITIALIZER, [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)]);
}

/**
 * The model at `path` with its large inline weights as references into the file (see the file's head), and the
 * folder to load it with (ONNX Runtime's external data folder). `what` names the model in errors ('U-Net').
 *
 * The folder is the model's own, except where links lead elsewhere (Hugging Face's cache links each file of a
 * snapshot to its blob; ONNX Runtime 1.30 refuses external data whose real path is outside the folder, "External
 * data path escapes model directory"): a model with external data files behind such links is loaded from their
 * real folder, its locations naming the files there (planData); a model.onnx that is a link has its inline weights
 * referred to in the linked file, in its own folder. Inline weights are referred to only when the model file lies
 * in the folder loaded with; otherwise they stay inline, as the whole file used to.
 */
export async function readModelWithWeightRefs(path: string, options: { what?: string; minBytes?: number } = {}): Promise<ModelWithWeightRefs> {
  const what = options.what ?? 'model';
  const minBytes = options.minBytes ?? MIN_REFERENCED_BYTES;
  if (!existsSync(path)) throw new MissingFileError(`${path}: no ${what} model (expected an SD 1.x ONNX folder with ${basename(dirname(path))}/model.onnx)`);
  const folder = resolve(dirname(path));
  const real = await realpath(path);
  const linkedAway = dirname(real) !== (await realpath(folder));
  const fh = await open(path, 'r');
  try {
    const w = new FileWindow(fh, (await fh.stat()).size);
    const model: ModelPiece[] = [];
    // the graph's fields, in order: initializers both ways, the others as they are
    const graphs: (ProtoField | Initializer)[][] = [];
    await eachField(w, 0, w.size, async (m) => {
      if (m.field !== MODEL_GRAPH || m.wire !== 2) return keep(model, m);
      const graph: (ProtoField | Initializer)[] = [];
      await eachField(w, m.data, m.end, async (g) => {
        graph.push(g.field === GRAPH_INITIALIZER && g.wire === 2 ? await initializer(w, g, basename(real), minBytes) : g);
      });
      model.push(graphs.length); // (where the graph goes: put together below)
      graphs.push(graph);
    });
    const inits = graphs.flat().filter((x): x is Initializer => 'asIs' in x);
    const locations = new Set(inits.flatMap((x) => (x.location ? [x.location] : [])));
    const plan = locations.size > 0 ? await planData(path, folder, real, locations) : null;
    // the folder to load with: the external data's, else (inline weights only) the model file's own
    const dataFolder = plan ? plan.folder : linkedAway ? dirname(real) : folder;
    const byRef = inits.some((x) => x.byRef) && (await realpath(dataFolder)) === dirname(real);
    const pieces: Piece[] = [];
    for (const p of model) {
      if (typeof p !== 'number') {
        pieces.push(p);
        continue;
      }
      const graph: Piece[] = [];
      for (const x of graphs[p]) {
        const to = 'asIs' in x && x.location ? plan?.relocated.get(x.location) : undefined;
        if (!('asIs' in x)) keep(graph, x);
        else if (byRef && x.byRef) graph.push(...x.byRef);
        else if (to !== undefined) graph.push(...relocatedInitializer(x, to));
        else keep(graph, x.asIs);
      }
      pieces.push(...message(MODEL_GRAPH, graph));
    }
    const referenced = byRef ? inits.filter((x) => x.byRef) : [];
    const bytes = await assemble(fh, pieces);
    return {
      model: onnx.ModelProto.decode(bytes),
      bytes,
      dataFolder,
      byPath: plan?.byPath ?? true,
      unloadable: plan?.unloadable ?? null,
      referenced: referenced.length,
      referencedBytes: referenced.reduce((a, x) => a + x.rawBytes, 0),
    };
  } catch (e) {
    if (e instanceof MissingFileError) throw e;
    throw new FormatError(`${path}: not a readable ONNX model (${(e as Error).message})`);
  } finally {
    await fh.close();
  }
}
