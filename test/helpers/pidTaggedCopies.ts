/**
 * U-Net copies as the builds that wrote them to the OS temp folder named them (brainlatent-unet-layers-<host
 * tag>-<pid>-<mkdtemp's 6 characters>, a model.onnx inside), for the tests that these are cleaned up: one of a
 * process that has exited, one of this live process, one of another host (not judged from here).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { deadPid } from './deadPid.js';

export interface PidTaggedCopies {
  dead: string;
  live: string;
  otherHost: string;
  /** Another copy of the dead process, made now (for a second clean-up). */
  deadAgain(): string;
}

export function pidTaggedCopies(dir: string): PidTaggedCopies {
  // a pid no process has (an exited child's could be reused before the clean-up runs)
  const dead = deadPid();
  const copy = (pid: number, tag = HOST_TAG) => {
    const p = join(dir, `brainlatent-unet-layers-${tag}-${pid}-aB3xYz`);
    mkdirSync(p);
    writeFileSync(join(p, 'model.onnx'), 'a copy');
    return p;
  };
  return {
    dead: copy(dead),
    live: copy(process.pid),
    otherHost: copy(dead, HOST_TAG === '000000' ? '111111' : '000000'),
    deadAgain: () => copy(dead),
  };
}
