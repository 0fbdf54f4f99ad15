/**
 * BRAINLATENT_ORT_SPINNING: the default of the `spinning` session option (ONNX Runtime's intra-op spin-waiting) for
 * the sessions this process makes, '0' or '1'; unset, ONNX Runtime's (true). A batch pool that runs more than one
 * job process at once sets '0' in them (ts/batch/jobThreads.ts): several sessions sampling at once on the same
 * cores lose time to each other's spinning threads (docs/sampler.md). An option given to `load` wins.
 */
import { InvalidArgumentError } from '../errors.js';

export const ORT_SPINNING_ENV = 'BRAINLATENT_ORT_SPINNING';

/** The environment's default for `spinning`, or undefined (ONNX Runtime's); any value but '0', '1' or '' is refused. */
export function spinningFromEnv(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const v = env[ORT_SPINNING_ENV];
  if (v === undefined || v === '') return undefined;
  if (v === '0' || v === '1') return v === '1';
  throw new InvalidArgumentError(`${ORT_SPINNING_ENV}: expected 0 or 1 (ONNX Runtime's intra-op spinning off or on), got ${JSON.stringify(v)}`);
}
