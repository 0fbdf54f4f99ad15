/** How many engine threads a job process uses: a worker's --threads reaches its job processes by environment. */

/** Environment variable that carries a worker's engine thread count into its job processes. */
export const THREADS_ENV = 'BRAINLATENT_THREADS';

/** Applies THREADS_ENV in a job process (BLAS and the engine's loops); the engine is loaded only when it is set. */
export async function applyThreadsFromEnv(): Promise<void> {
  const n = Number(process.env[THREADS_ENV] ?? 0);
  if (!Number.isInteger(n) || n <= 0) return;
  const { setThreads } = await import('../ridge/RidgeCV.js');
  setThreads(n);
}
