/**
 * The SD 1.x layout the engine checks when it loads a folder (native/core/src/sd_pipeline.cpp: each component's
 * input and output names and ranks), read here from the files' declared signatures without loading anything, so a
 * preflight refuses the folder (a U-Net that is really the VAE decoder) before a run writes anything. Element
 * types are left to the load; names and ranks are what tell one component from another.
 */
import { join } from 'node:path';

import { readOnnxSignature, type OnnxTensorDecl } from './onnxSignature.js';

const described = (ts: OnnxTensorDecl[]) => ts.map((t) => `${t.name} [${t.dims.map((d) => d ?? '?').join(', ')}]`).join(', ') || 'none';

/** One problem per component whose declared inputs or outputs are not the engine's, naming the file and what it found. */
export async function sdLayoutProblems(modelDir: string): Promise<string[]> {
  const problems: string[] = [];
  const check = async (component: string, expected: string, rule: (inputs: OnnxTensorDecl[], outputs: OnnxTensorDecl[]) => string | null) => {
    const path = join(modelDir, component, 'model.onnx');
    let sig;
    try {
      sig = await readOnnxSignature(path, component);
    } catch (e) {
      problems.push((e as Error).message);
      return;
    }
    const problem = rule(sig.inputs, sig.outputs);
    if (problem) problems.push(`${path} ${problem} (found inputs: ${described(sig.inputs)}; outputs: ${described(sig.outputs)}); expected ${expected}`);
  };
  const named = (ts: OnnxTensorDecl[], name: string) => ts.find((t) => t.name === name) ?? (ts.length === 1 ? ts[0] : undefined);
  await check('unet', 'sample [batch, 4, h, w], timestep, encoder_hidden_states [batch, 77, D] -> out_sample', (inputs, outputs) => {
    const [x, t, c] = ['sample', 'timestep', 'encoder_hidden_states'].map((n) => inputs.find((i) => i.name === n));
    if (!x || !t || !c) return 'lacks sample, timestep or encoder_hidden_states: not an SD 1.x U-Net';
    if (inputs.length !== 3) return 'has extra inputs (not an SD 1.x U-Net)';
    if (x.dims.length !== 4 || c.dims.length !== 3 || t.dims.length > 1) return 'has inputs of the wrong rank (sample 4, encoder_hidden_states 3, timestep 0 or 1)';
    return named(outputs, 'out_sample') ? null : 'has no out_sample output';
  });
  await check('vae_decoder', 'latent_sample [batch, 4, h, w] -> sample [batch, 3, 8h, 8w]', (inputs, outputs) => {
    const x = named(inputs, 'latent_sample');
    if (!x || x.dims.length !== 4) return 'has no rank-4 latent_sample input';
    return named(outputs, 'sample') ? null : 'has no sample output';
  });
  await check('vae_encoder', 'sample [batch, 3, H, W] -> latent_sample or latent_parameters', (inputs, outputs) => {
    const x = named(inputs, 'sample');
    if (!x || x.dims.length !== 4) return 'has no rank-4 sample input';
    return outputs.some((o) => o.name === 'latent_sample' || o.name === 'latent_parameters') ? null : 'has neither latent_sample nor latent_parameters';
  });
  await check('text_encoder', 'input_ids [batch, 77] -> last_hidden_state [batch, 77, D]', (inputs, outputs) => {
    const ids = inputs.find((i) => i.name === 'input_ids') ?? (inputs.length === 1 ? inputs[0] : undefined);
    if (!ids || ids.dims.length !== 2) return 'has no rank-2 input_ids';
    const extra = inputs.find((i) => i !== ids && i.name !== 'attention_mask');
    if (extra) return `has an unexpected input '${extra.name}'`;
    return outputs.some((o) => o.name === 'last_hidden_state' || o.dims.length === 3) ? null : 'has no last_hidden_state output';
  });
  return problems;
}
