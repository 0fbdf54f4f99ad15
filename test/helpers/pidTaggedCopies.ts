/**
 * U-Net copies as the builds that wrote them to the OS temp folder named them (brainlatent-unet-layers-<host
 * tag>-<pid>-<mkdtemp's 6 characters>, a model.onnx inside), for the tests that these are cleaned up: one of a
 * process that has exited, one of this live process, one of another host (not judged from here).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { HOST_TAG } from '../../ts/io/atomicWrite.js';

export interface PidTaggedCopies {
  dead: string;
  live: string;
  otherHost: string;
  /** Another copy of the dead process, made now (for a second clean-up). */
  deadAgain(): string;
}

export function pidTaggedCopies(dir: string): PidTaggedCopies {
  // a process that has exited: its pid names a dead process
  const child = spawnSync(process.execPath, ['-e', '']);
  if (child.status !== 0 || !child.pid) throw new Error(`a child node process to get a dead pid from: exit status ${child.status}, expected 0`);
  const copy = (pid: number, tag = HOST_TAG) => {
    const p = join(dir, `brainlatent-unet-layers-${tag}-${pid}-aB3xYz`);
    mkdirSync(p);
    writeFileSync(join(p, 'model.onnx'), 'a copy');
    return p;
  };
  return {
    dead: copy(child.pid),
    live: copy(process.pid),
    otherHost: copy(child.pid, HOST_TAG === '000000' ? '111111' : '000000'),
    deadAgain: () => copy(child.pid),
  };
}
