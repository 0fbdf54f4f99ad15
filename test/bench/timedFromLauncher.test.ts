import { describe, expect, it } from 'vitest';
import { timedFromLauncher } from '../../ts/bench/ridge.js';

describe('timedFromLauncher (bench ridge times the whole command from a small process)', () => {
  it("gives the command's stdout and a wall time that covers its run", () => {
    const r = timedFromLauncher(process.execPath, ['-e', "setTimeout(() => console.log('done', process.argv[1]), 200)", 'arg with spaces']);
    expect(r.stdout).toBe('done arg with spaces\n');
    expect(r.seconds).toBeGreaterThanOrEqual(0.2);
  });

  it("fails with the command's own stderr in the error", () => {
    expect(() => timedFromLauncher(process.execPath, ['-e', "console.error('the reason'); process.exit(3)"])).toThrow(/the reason/);
  });
});
