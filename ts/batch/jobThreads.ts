/**
 * How a job process's threads run: a worker's --threads reaches its job processes by environment, and so does
 * ONNX Runtime's spinning, off when several job processes run at once.
 */
import { InvalidArgumentError } from '../errors.js';
import { ORT_SPINNING_ENV } from '../sd/spinningEnv.js';

/** Environment variable that carries a worker's engine thread count into its job processes. */
export const THREADS_ENV = 'BRAINLATENT_THREADS';

/**
 * Applies THREADS_ENV in a job process (BLAS and the engine's loops); the engine is loaded only when it is set. A
 * count the engine refuses (above MAX_ENGINE_THREADS) rejects with an InvalidArgumentError that names the variable
 * and the worker's --threads that set it: the pool worker reports it as each job's error.
 */
export async function applyThreadsFromEnv(): Promise<void> {
  const text = process.env[THREADS_ENV] ?? '0';
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) return;
  const { setThreads } = await import('../ridge/RidgeCV.js');
  try {
    setThreads(n);
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    throw new InvalidArgumentError(`${THREADS_ENV}=${text} (the worker's --threads, engine threads per job): ${e.message}`);
  }
}

/**
 * The environment of a pool's job processes: `threads` (when > 0) as THREADS_ENV and, when more than one runs at
 * once, ONNX Runtime's spinning off (BRAINLATENT_ORT_SPINNING=0): each job's sessions default to every core, so
 * spinning threads of one take the cores another computes on (two samplers at once ran in 0.58–0.86 of the time
 * without it, four in 0.67–0.72: docs/sampler.md). A value already in `base` (the user's) is kept.
 */
export function jobProcessEnv(base: NodeJS.ProcessEnv, concurrency: number, threads?: number): NodeJS.ProcessEnv {
  const spinOff = concurrency > 1 && base[ORT_SPINNING_ENV] === undefined;
  if (!threads && !spinOff) return base;
  return { ...base, ...(threads ? { [THREADS_ENV]: String(threads) } : {}), ...(spinOff ? { [ORT_SPINNING_ENV]: '0' } : {}) };
}
