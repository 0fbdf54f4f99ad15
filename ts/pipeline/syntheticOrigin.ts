/**
 * Whether a run's inputs are brainlatent's own stand-ins rather than NSD and Stable Diffusion: a world that `synth nsd`
 * or the demo wrote (its NSD root holds synth_truth.json) and a model folder the demo or the test fixture wrote
 * (model_index.json's `_brainlatent_demo` or `_brainlatent_fixture`). The report says so at its top and beside the
 * published NSD results: the demo's PixCorr 0.899 on 128 px procedural scenes sat unlabelled above MindEye2's 0.322
 * (review s45).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One sentence per stand-in among the run's inputs; empty for real data and a real model. */
export async function syntheticInputs(nsdRoot: string, modelDir: string): Promise<string[]> {
  const out: string[] = [];
  if (existsSync(join(nsdRoot, 'synth_truth.json'))) {
    out.push('the betas are synthetic: a miniature NSD-shaped subject that brainlatent wrote from a planted encoding model (synth_truth.json in the NSD root), not NSD');
  }
  const index = await readFile(join(modelDir, 'model_index.json'), 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, () => null);
  if (index && '_brainlatent_demo' in index) out.push("the model is the demo world's closed-form stand-in (a closed-form VAE, a bag-of-words text encoder, an exact denoiser), not Stable Diffusion");
  else if (index && '_brainlatent_fixture' in index) out.push('the model is a test fixture with random weights, not Stable Diffusion');
  return out;
}
