/** onnx-proto's `onnx` namespace for tests that build or read ONNX messages (the library loads it on first use). */
import { onnxProto } from '../../ts/lazyPackages.js';

export const onnx = onnxProto();
