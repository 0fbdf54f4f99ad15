/**
 * This thread's full garbage collection, for a predict thread that must give a dropped model's SharedArrayBuffers
 * back (predictWorker.ts). `gc` is exposed only to contexts made while V8's --expose-gc flag is on, and V8's flags
 * are the process's, not the thread's: the flag is turned on and left on. Turning it off again once this thread had
 * its `gc` raced with the threads starting beside it: one's --no-expose-gc fell between another's --expose-gc and
 * its new context, which then had no `gc` ("gc is not defined", and the thread never started: ci-s47a).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function threadGc(): () => void {
  const own = (globalThis as { gc?: () => void }).gc;
  if (own) return own;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
