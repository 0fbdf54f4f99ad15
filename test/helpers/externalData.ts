/**
 * ONNX external data for test models, as onnx's save_as_external_data writes it: `externalize` moves tensors'
 * raw_data into a file beside the model; which tensors is the walk it is given (the graph's initializers, as
 * exports of plain graphs have them, or every tensor, wherever it is: subgraphs and node attributes too).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { onnx } from './onnx.js';

type IGraph = import('onnx-proto').onnx.IGraphProto;
type IModel = import('onnx-proto').onnx.IModelProto;
type ITensor = import('onnx-proto').onnx.ITensorProto;

/** Visits tensors of a model; `where` names the place (for the tests that pick a tensor by it). */
export type TensorWalk = (m: IModel, visit: (t: ITensor, where: string) => void) => void;

/** The main graph's initializers only. */
export const graphInitializers: TensorWalk = (m, visit) => {
  for (const t of m.graph!.initializer ?? []) visit(t, 'graph initializer');
};

/** Every tensor of the model: initializers of the graph and of every subgraph, and tensors in node attributes. */
export const eachTensor: TensorWalk = (m, visit) => {
  const graph = (gr: IGraph, where: string) => {
    for (const t of gr.initializer ?? []) visit(t, `${where} initializer`);
    for (const n of gr.node ?? []) {
      for (const at of n.attribute ?? []) {
        const here = `${where} node '${n.name}' attribute '${at.name}'`;
        if (at.t) visit(at.t, here);
        for (const t of at.tensors ?? []) visit(t, here);
        if (at.g) graph(at.g, `${here} graph`);
        for (const sub of at.graphs ?? []) graph(sub, `${here} graph`);
      }
    }
  };
  graph(m.graph!, 'graph');
};

/**
 * Moves the raw_data of the float tensors of 64 bytes or more that `tensors` walks (default: the graph's
 * initializers) into `dataName` beside the model at `path`, as onnx.save_model(..., save_as_external_data=True,
 * size_threshold=64) does (small ones, and the shapes and axes shape inference reads, stay inline; the fixture's
 * VAE weights are a few hundred bytes). Returns how many tensors moved.
 */
export async function externalize(path: string, dataName: string, tensors: TensorWalk = graphInitializers): Promise<number> {
  const m = onnx.ModelProto.decode(await readFile(path));
  const chunks: Buffer[] = [];
  let offset = 0;
  tensors(m, (t) => {
    if ((t.rawData?.length ?? 0) < 64 || t.dataType !== onnx.TensorProto.DataType.FLOAT) return;
    const raw = Buffer.from(t.rawData!);
    chunks.push(raw);
    t.externalData = [
      { key: 'location', value: dataName },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    offset += raw.length;
  });
  await writeFile(join(dirname(path), dataName), Buffer.concat(chunks));
  await writeFile(path, onnx.ModelProto.encode(m).finish());
  return chunks.length;
}

/** The external data locations the serialized model names, wherever its tensors are. */
export function externalLocations(bytes: Uint8Array): string[] {
  const out = new Set<string>();
  eachTensor(onnx.ModelProto.decode(bytes), (t) => {
    const l = t.externalData?.find((e) => e.key === 'location')?.value;
    if (l) out.add(l);
  });
  return [...out];
}

/**
 * Renames the external data location of the model's tensors that `pick` chooses (eachTensor's `where` names
 * their place) to `location`; returns their names. For the tests of locations that leave the model's folder.
 */
export async function relocate(path: string, pick: (t: ITensor, where: string) => boolean, location: string): Promise<string[]> {
  const m = onnx.ModelProto.decode(await readFile(path));
  const names: string[] = [];
  eachTensor(m, (t, where) => {
    if (!t.externalData?.length || !pick(t, where)) return;
    t.externalData = t.externalData.map((e) => (e.key === 'location' ? { key: 'location', value: location } : e));
    names.push(t.name ?? '');
  });
  await writeFile(path, onnx.ModelProto.encode(m).finish());
  return names;
}
