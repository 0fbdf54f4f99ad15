/** Child process of the local pool: runs the jobs the parent sends, one at a time (see pool.ts). */
import { serializeError } from './errors.js';
import { applyThreadsFromEnv } from './processJob.js';
import type { PoolReply, PoolRequest } from './pool.js';
import { runNode } from './runNode.js';

applyThreadsFromEnv();
let current: AbortController | null = null;
const send = (m: PoolReply) => process.send?.(m);

process.on('message', (m: PoolRequest) => {
  if (m.type === 'abort') {
    current?.abort();
    return;
  }
  const ac = new AbortController();
  current = ac;
  let last = 0;
  runNode(m.node, {
    depsRan: m.depsRan,
    signal: ac.signal,
    progress: (fraction, message) => {
      // a few updates a second are enough for a table
      const now = Date.now();
      if (now - last < 200 && fraction < 1) return;
      last = now;
      send({ type: 'progress', fraction, message });
    },
  }).then(
    (result) => send({ type: 'result', result }),
    (e: unknown) => send({ type: 'error', error: serializeError(e) }),
  ).finally(() => {
    current = null;
  });
});
process.on('SIGTERM', () => {
  current?.abort();
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
// never outlive the batch runner, even when 'disconnect' does not come (the runner was SIGKILLed)
const parent = process.ppid;
setInterval(() => {
  if (!process.connected || process.ppid !== parent) process.exit(1);
}, 1000).unref();
