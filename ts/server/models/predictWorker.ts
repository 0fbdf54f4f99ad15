/**
 * A predict thread of PredictPool: holds the models' arrays (shared memory, never copied per thread) and runs
 * the engine's ridge predict on request, so the service's event loop never waits on a GEMM.
 */
import { parentPort } from 'node:worker_threads';

import { nativeSync } from '../../native/call.js';
import type { PoolMessage, SharedRidge } from './predictPool.js';

const models = new Map<string, SharedRidge>();
const port = parentPort!;

port.on('message', (m: PoolMessage) => {
  if (m.type === 'model') models.set(m.key, m.model);
  else if (m.type === 'drop') models.delete(m.key);
  else {
    const model = models.get(m.key);
    try {
      if (!model) throw new Error(`model ${m.key} is not loaded in this thread`);
      const y = nativeSync((b) => b.ridgePredict(m.x, m.rows, m.cols, model.coef, model.targets, model.intercept, model.xMean, model.xScale));
      port.postMessage({ id: m.id, y });
    } catch (e) {
      port.postMessage({ id: m.id, error: { name: (e as Error).name, message: (e as Error).message, code: (e as { code?: string }).code } });
    }
  }
});
