/**
 * A job's own process, forked by the service's job spawner (spawnerProcess.ts): runs the one job it is sent and
 * reports progress, then the result or the error, over IPC. `abort` cancels it at the library's next step or batch.
 */
import { BrainlatentError, CancelledError } from '../../errors.js';
import { publicError } from '../publicError.js';
import { executeJob } from './executeJob.js';
import type { ChildReply, ChildRequest } from './jobProcess.js';

const controller = new AbortController();
// once the channel has closed (the spawner went away) there is no one to tell
const send = (m: ChildReply) => {
  if (process.connected) process.send!(m);
};

process.on('message', (m: ChildRequest) => {
  if (m.type === 'abort') {
    controller.abort(new CancelledError(m.reason));
    return;
  }
  executeJob(m.spec, {
    signal: controller.signal,
    progress: (p) => send({ type: 'progress', progress: p }),
    unet: (calls, seconds) => send({ type: 'unet', calls, seconds }),
    batchCancelled: () => send({ type: 'batchCancelled' }),
  }).then(
    (result) => send({ type: 'result', result }),
    (e: unknown) => {
      const cancelled = controller.signal.aborted || e instanceof CancelledError;
      // the operator's log: one line for a failure the inputs explain, the stack for anything else
      if (!cancelled) console.error(`brainlatent job ${m.spec.kind} (${m.spec.outShown}) failed:`, e instanceof BrainlatentError || (e as NodeJS.ErrnoException)?.syscall ? `${(e as Error).name}: ${(e as Error).message}` : e);
      const result = (e as { result?: Record<string, unknown> })?.result;
      send({ type: 'error', error: publicError(e), cancelled, ...(result ? { result } : {}) });
    },
  ).finally(() => {
    if (process.connected) process.disconnect();
  });
});
// The spawner going away (with the service, or killed) cancels the job.
process.on('disconnect', () => controller.abort(new CancelledError('the service went away')));
