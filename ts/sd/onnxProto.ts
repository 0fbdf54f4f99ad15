/** The onnx-proto schema (a CommonJS package) reached from ESM with its own typings. */
import * as onnxNs from 'onnx-proto';

type OnnxModule = typeof onnxNs;
const mod = onnxNs as OnnxModule & { default?: OnnxModule };
export const onnx: OnnxModule['onnx'] = (mod.default ?? mod).onnx;
