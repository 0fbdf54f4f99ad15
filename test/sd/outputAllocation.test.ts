/**
 * The engine's outputs that the addon allocates (img2img's latents, philoxNormal's noise) are allocated by the addon
 * itself, not by V8: an ArrayBuffer V8 cannot allocate ends the process ("Fatal process out of memory:
 * v8::ArrayBuffer::New"), where this is an OutOfMemoryError (reason 'allocation') naming the output and its size.
 * Each case runs in a child process, as the crash it was would take the test runner with it: philoxNormal asks for
 * 4 TiB (refused by the kernel at once, nothing touched); img2img runs under an address-space limit that holds its
 * 1 GiB input z but not a second 1 GiB for its output.
 */
import { execFile, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { ensureFixtures } from './fixtures.js';

const run = promisify(execFile);
const addon = resolve('build', 'Release', 'brainlatent.node');

describe('an output the addon cannot allocate', () => {
  it('philoxNormal: 2^40 values are an OutOfMemory error naming it, and the process goes on', async () => {
    const script = `
      const b = require(${JSON.stringify(addon)});
      try { b.philoxNormal(0, 0, 0, 0, 2 ** 40); console.log('allocated'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, reason: e.reason, message: e.message })); }
      console.log(b.philoxNormal(0, 0, 0, 0, 2).length);`;
    const { stdout } = await run(process.execPath, ['-e', script]);
    const [first, second] = stdout.trim().split('\n');
    expect(JSON.parse(first)).toEqual({ code: 'OutOfMemory', reason: 'allocation', message: 'philoxNormal: out of memory for its 1099511627776 values (4096.00 GiB)' });
    expect(second).toBe('2');
  });

  it.skipIf(process.platform !== 'linux')("img2img: latents it cannot allocate are an OutOfMemoryError, not the process's end", async () => {
    const model = join(await ensureFixtures(), 'optimum-1.24');
    // the child loads the model, says how much address space it holds, and waits for its limit to be set
    const script = `
      const { readFileSync } = require('node:fs');
      (async () => {
        const { Diffusion } = await import(${JSON.stringify(distModule('sd/Diffusion'))});
        const sd = await Diffusion.load(${JSON.stringify(model)}, { intraOpThreads: 1 });
        const c = await sd.encodeText(['a cat']);
        const vm = Number(/VmSize:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
        process.stdout.write(JSON.stringify({ vm }) + '\\n');
        await new Promise((r) => process.stdin.once('data', r));
        const side = 16384; // z [1, 4, 16384, 4096]: 1 GiB
        const z = { data: new Float32Array(4 * side * 4096), shape: [1, 4, side, 4096] };
        try {
          await sd.img2img({ z, c, steps: 2, strength: 1, scheduler: 'euler', guidance: 1 });
          console.log(JSON.stringify({ ran: true }));
        } catch (e) {
          console.log(JSON.stringify({ name: e.name, reason: e.reason, message: e.message }));
        }
        process.exit(0);
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const ready = new Promise<number>((res) => child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\{"vm":(\d+)\}\n/.exec(out);
      if (m) res(Number(m[1]));
    }));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const vm = await ready;
    // room for z (1 GiB) and some, not for the output's second GiB
    await run('prlimit', [`--pid=${child.pid}`, `--as=${vm + 1.5 * 2 ** 30}`]);
    child.stdin.write('go\n');
    const code = await exited;
    expect(err, err).not.toMatch(/Fatal process out of memory/);
    expect(code, err).toBe(0);
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result).toEqual({ name: 'OutOfMemoryError', reason: 'allocation', message: expect.stringMatching(/^sdImg2Img: the output latents: out of memory for its 268435456 values \(1\.00 GiB\)/) });
  }, 120_000);
});
