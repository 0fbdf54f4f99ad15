/**
 * Models whose weights are not all graph initializers, as exporters write some: a Constant node's `value`
 * attribute (torch.onnx keeps constants folded out of parameters so), the initializers of If branches and Loop
 * bodies (control flow exported with its own weights), and a Constant inside such a body. `nestWeights` moves a
 * model's float initializers there without changing what it computes (each comes out of an Identity or a
 * Squeeze bit for bit); externalData.ts's `externalize(path, file, eachTensor)` then moves every float tensor's
 * raw_data, wherever it is, into an external-data file, as onnx's save_as_external_data does (it walks
 * subgraphs and attributes too).
 */
import { readFile, writeFile } from 'node:fs/promises';

import { onnx } from './onnx.js';

type IGraph = import('onnx-proto').onnx.IGraphProto;
type INode = import('onnx-proto').onnx.INodeProto;
type ITensor = import('onnx-proto').onnx.ITensorProto;
type IValueInfo = import('onnx-proto').onnx.IValueInfoProto;

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

const info = (name: string, elemType: number, dims: number[]): IValueInfo => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});
const floatInfo = (name: string, t: ITensor) => info(name, T.FLOAT, (t.dims ?? []).map(Number));
const renamed = (t: ITensor, name: string): ITensor => ({ ...t, name });
const constantNode = (name: string, value: ITensor, output: string): INode => ({
  opType: 'Constant',
  name,
  input: [],
  output: [output],
  attribute: [{ name: 'value', type: A.TENSOR, t: renamed(value, `${output}_value`) }],
});
const boolConstant = (output: string, v: boolean): INode => ({
  opType: 'Constant',
  name: `${output}_node`,
  output: [output],
  attribute: [{ name: 'value', type: A.TENSOR, t: { name: `${output}_value`, dims: [], dataType: T.BOOL, int32Data: [v ? 1 : 0] } }],
});
const int64Constant = (output: string, v: number[], dims: number[]): INode => ({
  opType: 'Constant',
  name: `${output}_node`,
  output: [output],
  attribute: [{ name: 'value', type: A.TENSOR, t: { name: `${output}_value`, dims, dataType: T.INT64, rawData: new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer) } }],
});

/** Where each moved weight went, by its name in the original graph. */
export interface NestedWeights {
  constant: string;
  ifThen: string;
  ifElse: string;
  loopConstant: string;
  loopInitializer: string;
}

/**
 * The model at `path` rewritten in place with five of its float initializers of 64 bytes or more (it needs five)
 * produced otherwise: one by a Constant node; one by an If whose condition is true (its then-branch's initializer;
 * the else-branch holds a copy), one by an If whose condition is false (its else-branch's initializer); two by a
 * Loop of one trip, whose body yields one from a Constant node inside it and one from its own initializer (scan
 * outputs, squeezed). The conditions are constants, as the model's inputs vary by component.
 */
export async function nestWeights(path: string): Promise<NestedWeights> {
  const m = onnx.ModelProto.decode(await readFile(path));
  const g = m.graph!;
  const big = g.initializer!.filter((t) => t.dataType === T.FLOAT && (t.rawData?.length ?? 0) >= 64);
  if (big.length < 5) throw new Error(`${path}: ${big.length} float initializers of 64 bytes or more, 5 needed`);
  const [c, a, b, lc, li] = big;
  const moved = new Set([c, a, b, lc, li]);
  g.initializer = g.initializer!.filter((t) => !moved.has(t));
  const nodes: INode[] = [constantNode('nested_constant', c, c.name!)];
  // If: each branch returns its own initializer (the same values), so either branch gives the weight
  const branch = (t: ITensor, tag: string): IGraph => ({
    name: `${t.name}_${tag}`,
    initializer: [renamed(t, `${t.name}_${tag}_w`)],
    node: [{ opType: 'Identity', name: `${t.name}_${tag}_id`, input: [`${t.name}_${tag}_w`], output: [`${t.name}_${tag}_out`] }],
    output: [floatInfo(`${t.name}_${tag}_out`, t)],
  });
  const ifNode = (t: ITensor, cond: boolean): INode[] => [
    boolConstant(`${t.name}_cond`, cond),
    {
      opType: 'If',
      name: `${t.name}_if`,
      input: [`${t.name}_cond`],
      output: [t.name!],
      attribute: [
        { name: 'then_branch', type: A.GRAPH, g: branch(t, 'then') },
        { name: 'else_branch', type: A.GRAPH, g: branch(t, 'else') },
      ],
    },
  ];
  nodes.push(...ifNode(a, true), ...ifNode(b, false));
  // Loop of one trip: scan outputs [1, ...dims] of a Constant inside the body and of the body's own initializer
  const body: IGraph = {
    name: 'loop_body',
    input: [info('loop_i', T.INT64, []), info('loop_cond_in', T.BOOL, [])],
    initializer: [renamed(li, `${li.name}_body_w`)],
    node: [
      { opType: 'Identity', name: 'loop_cond_id', input: ['loop_cond_in'], output: ['loop_cond_out'] },
      constantNode('loop_constant', lc, `${lc.name}_body_c`),
      { opType: 'Identity', name: 'loop_c_id', input: [`${lc.name}_body_c`], output: [`${lc.name}_scan`] },
      { opType: 'Identity', name: 'loop_w_id', input: [`${li.name}_body_w`], output: [`${li.name}_scan`] },
    ],
    output: [info('loop_cond_out', T.BOOL, []), floatInfo(`${lc.name}_scan`, lc), floatInfo(`${li.name}_scan`, li)],
  };
  nodes.push(
    int64Constant('loop_trips', [1], []),
    boolConstant('loop_go', true),
    int64Constant('loop_axes', [0], [1]),
    {
      opType: 'Loop',
      name: 'nested_loop',
      input: ['loop_trips', 'loop_go'],
      output: [`${lc.name}_stacked`, `${li.name}_stacked`],
      attribute: [{ name: 'body', type: A.GRAPH, g: body }],
    },
    { opType: 'Squeeze', name: 'loop_c_squeeze', input: [`${lc.name}_stacked`, 'loop_axes'], output: [lc.name!] },
    { opType: 'Squeeze', name: 'loop_w_squeeze', input: [`${li.name}_stacked`, 'loop_axes'], output: [li.name!] },
  );
  g.node = [...nodes, ...g.node!];
  await writeFile(path, onnx.ModelProto.encode(m).finish());
  return { constant: c.name!, ifThen: a.name!, ifElse: b.name!, loopConstant: lc.name!, loopInitializer: li.name! };
}
