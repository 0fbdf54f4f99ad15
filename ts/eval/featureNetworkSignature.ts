/**
 * A feature network's declared output and image input against its spec, read from the ONNX file's graph without
 * loading it (readOnnxSignature): reconstruct's preflight reports a wrong `output` name or `inputSize` before the
 * extraction, the decoders and img2img run, not at the evaluation stage after them.
 */
import { readOnnxSignature } from '../sd/onnxSignature.js';
import type { FeatureNetworkSpec } from './featureNetwork.js';

/** What in `spec` the network at spec.path cannot do, named by `field` ('evaluation.networks[0]'); [] when none. */
export async function featureNetworkProblems(spec: Pick<FeatureNetworkSpec, 'name' | 'path' | 'output' | 'inputSize'>, field: string): Promise<string[]> {
  let sig;
  try {
    sig = await readOnnxSignature(spec.path, `feature network '${spec.name}'`);
  } catch (e) {
    return [`${field} (feature network '${spec.name}'): ${(e as Error).message}`];
  }
  const problems: string[] = [];
  const names = sig.outputs.map((o) => o.name);
  if (names.length === 0) problems.push(`${field}: feature network '${spec.name}' (${spec.path}) declares no outputs`);
  else if (spec.output !== undefined && !names.includes(spec.output)) {
    problems.push(`${field}.output: feature network '${spec.name}' (${spec.path}) has no output '${spec.output}'; it has ${names.join(', ')}`);
  }
  // The images go to the first input as [batch, 3, inputSize, inputSize] (FeatureNetwork.features): a declared
  // channel count or side that is fixed and different fails there.
  const dims = sig.inputs[0]?.dims;
  if (dims?.length === 4) {
    const [, c, h, w] = dims;
    if (typeof c === 'number' && c !== 3) problems.push(`${field}: feature network '${spec.name}' (${spec.path}) takes ${c} channels in '${sig.inputs[0].name}', expected RGB (3)`);
    const fixed = [h, w].filter((d): d is number => typeof d === 'number');
    if (fixed.some((d) => d !== spec.inputSize)) {
      problems.push(
        `${field}.inputSize ${spec.inputSize}: feature network '${spec.name}' (${spec.path}) takes '${sig.inputs[0].name}' of ` +
          `${h ?? '?'}×${w ?? '?'} only: set inputSize to ${fixed[0]}`,
      );
    }
  }
  return problems;
}
