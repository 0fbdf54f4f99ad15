import { describe, expect, it } from 'vitest';
import { nodeStartup, timedFromLauncher } from '../../ts/bench/ridge.js';

describe('timedFromLauncher (bench ridge times the whole command from a small process)', () => {
  it("gives the command's stdout and a wall time that covers its run", () => {
    const r = timedFromLauncher(process.execPath, ['-e', "setTimeout(() => console.log('done', process.argv[1]), 200)", 'arg with spaces']);
    expect(r.stdout).toBe('done arg with spaces\n');
    expect(r.seconds).toBeGreaterThanOrEqual(0.2);
  });

  it("fails with the command's own stderr in the error", () => {
    expect(() => timedFromLauncher(process.execPath, ['-e', "console.error('the reason'); process.exit(3)"])).toThrow(/the reason/);
  });

  it('runs the command in the environment given', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, BL_PROBE: 'given' };
    delete env.HOME;
    const r = timedFromLauncher(process.execPath, ['-e', 'console.log(process.env.BL_PROBE, process.env.HOME === undefined)'], env);
    expect(r.stdout).toBe('given true\n');
  });

  it("measures Node's own start-up, and what NODE_EXTRA_CA_CERTS costs of it where it is set", () => {
    const r = nodeStartup();
    expect(r.seconds).toBeGreaterThan(0);
    expect(r.seconds).toBeLessThan(10);
    expect(r.extraCaCertsSeconds !== undefined).toBe(Boolean(process.env.NODE_EXTRA_CA_CERTS));
    if (r.extraCaCertsSeconds !== undefined) expect(r.extraCaCertsSeconds).toBeGreaterThanOrEqual(0);
  });
});
