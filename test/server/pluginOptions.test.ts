/**
 * The plugin's options are checked once, when it is registered in a host app: every mistake is an InvalidArgumentError
 * naming the option and what was expected, and an unknown key (a misspelt `token`) is refused rather than ignored.
 */
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { resolve } from 'node:path';

import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { brainlatentPlugin, startServer, type BrainlatentPluginOptions } from '../../ts/server/index.js';
import { runCommand } from '../helpers/nodeChild.js';
import { startServeCli, TEST_TOKEN } from './helpers.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-plugin-options-')));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Registers the plugin with `options` in a fresh app; the error it fails with, or undefined. */
async function registerError(options: unknown): Promise<Error | undefined> {
  const app = Fastify({ pluginTimeout: 0 });
  try {
    await app.register(brainlatentPlugin, options as BrainlatentPluginOptions);
    await app.ready();
    return undefined;
  } catch (e) {
    return e as Error;
  } finally {
    await app.close();
  }
}

describe('brainlatentPlugin and the host app', () => {
  it("warns when the app's pluginTimeout is shorter than closing can take with jobs running (deadline + 10 s kill grace + margin)", async () => {
    const warnings = async (pluginTimeout: number): Promise<string[]> => {
      const lines: string[] = [];
      const stream = { write: (line: string) => void lines.push(line) };
      const app = Fastify({ pluginTimeout, logger: { level: 'warn', stream } });
      await app.register(brainlatentPlugin, { root });
      await app.ready();
      await app.close();
      return lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => m.includes('pluginTimeout'));
    };
    // (the default deadline is 30 s: 40 s passed the old check, deadline + 5 s, but not closing's worst case)
    expect(await warnings(40_000)).toEqual([expect.stringMatching(/pluginTimeout \(40000 ms\) is shorter than closing can take with jobs running \(the shutdown deadline 30000 ms \+ 10000 ms/)]);
    expect(await warnings(45_000)).toEqual([]);
  });
});

describe('brainlatentPlugin options', () => {
  it('accepts every documented option, and the prefix and logLevel Fastify passes along', async () => {
    const e = await registerError({
      prefix: '/bl',
      logLevel: 'warn',
      root,
      token: TEST_TOKEN,
      jobs: { concurrency: 2, maxQueued: 10, workers: 256 },
      predict: { concurrency: 1, maxQueued: 0 },
      img2img: { concurrency: 1, maxQueued: 2 },
      bodyLimit: 1024,
      dataBodyLimit: 1 << 20,
      predictionLimit: 1 << 20,
      latentPixelLimit: 4096,
      inFlightBodyLimit: 4 << 20,
      maxModels: 4,
      shutdownDeadlineMs: 0,
      sessionMaxAgeSeconds: 3600,
      page: false,
      defaultMetrics: false,
      eventLoopResolutionMs: 5,
    });
    expect(e).toBeUndefined();
  });

  it.each([
    [{ root, tokens: 's3cret' }, /brainlatentPlugin: unknown option 'tokens' \(did you mean 'token'\?\)/],
    [{}, /brainlatentPlugin options\.root: expected the folder every path must stay inside .*got undefined/],
    [{ root: join(root, 'missing') }, /brainlatentPlugin options\.root: '.*missing' is not an existing folder \(ENOENT\)/],
    [{ root: join(root, 'a-file') }, /brainlatentPlugin options\.root: '.*a-file' is not a folder/],
    [{ root, token: 42 }, /options\.token: expected a non-empty string .*got 42/],
    [{ root, token: '' }, /options\.token: expected a non-empty string/],
    [{ root, token: 's3cret' }, /^brainlatentPlugin options\.token: the token is too easy to guess \(it has 6 characters; at least 16 are needed\): use a long random one/],
    [{ root, predict: { concurrency: 0 } }, /brainlatentPlugin options\.predict\.concurrency: expected an integer >= 1, got 0/],
    [{ root, img2img: { maxQueued: -1 } }, /options\.img2img\.maxQueued: expected an integer >= 0, got -1/],
    [{ root, jobs: { concurrency: 1.5 } }, /options\.jobs\.concurrency: expected an integer >= 1, got 1\.5/],
    // (runBatch's bound on a worker's job processes: past it every job was refused, not the start)
    [{ root, jobs: { workers: 257 } }, /^brainlatentPlugin options\.jobs\.workers: expected an integer in 0\.\.256, got 257$/],
    [{ root, jobs: { concurrency: 1, maxQueue: 3 } }, /brainlatentPlugin options\.jobs: unknown option 'maxQueue' \(did you mean 'maxQueued'\?\)/],
    [{ root, predict: 4 }, /options\.predict: expected an object \(concurrency\?, maxQueued\?\), got 4/],
    [{ root, shutdownDeadlineMs: '30s' }, /options\.shutdownDeadlineMs: expected an integer in 0\.\.2147453647, got string "30s"/],
    // (startServer's pluginTimeout, deadline + 30 s, and the runner's close timer overflowed to 1 ms: jobs cancelled at once)
    [{ root, shutdownDeadlineMs: 2 ** 31 }, /^brainlatentPlugin options\.shutdownDeadlineMs: expected an integer in 0\.\.2147453647, got 2147483648$/],
    // (the cookie said Max-Age=1e+21; RFC 6265bis caps Max-Age at 400 days)
    [{ root, sessionMaxAgeSeconds: 1e21 }, /^brainlatentPlugin options\.sessionMaxAgeSeconds: expected an integer in 1\.\.34560000, got 1e\+21$/],
    [{ root, bodyLimit: 0 }, /options\.bodyLimit: expected an integer >= 1, got 0/],
    [{ root, predictionLimit: 0 }, /options\.predictionLimit: expected an integer >= 1, got 0/],
    [{ root, latentPixelLimit: 0 }, /brainlatentPlugin options\.latentPixelLimit: expected an integer >= 1, got 0/],
    [{ root, inFlightBodyLimit: 1.5 }, /brainlatentPlugin options\.inFlightBodyLimit: expected an integer >= 1, got 1\.5/],
    [{ root, maxModels: '16' }, /brainlatentPlugin options\.maxModels: expected an integer >= 1, got string "16"/],
    [{ root, maxModel: 16 }, /brainlatentPlugin: unknown option 'maxModel' \(did you mean 'maxModels'\?\)/],
    [{ root, page: 'no' }, /options\.page: expected true or false, got string "no"/],
    [{ root, redis: 'http://127.0.0.1:6379' }, /brainlatentPlugin options\.redis: expected a redis:\/\/ or rediss:\/\/ URL/],
    [{ root, runner: {} }, /options\.runner: expected a JobRunner .*without submit, cancel, queueDepth, ready, close, board/],
  ])('refuses %j naming the option', async (options, message) => {
    writeFileSync(join(root, 'a-file'), '');
    const e = await registerError(options);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e?.message).toMatch(message);
  });

  it('startServer checks its own options and leaves the rest to the plugin', async () => {
    // one check, one wording, either side of the range
    await expect(startServer({ root, port: 70000 })).rejects.toThrow(/^startServer options\.port: expected an integer in 0\.\.65535, got 70000$/);
    await expect(startServer({ root, port: -1 })).rejects.toThrow(/^startServer options\.port: expected an integer in 0\.\.65535, got -1$/);
    // (nice spans -20 to 19: the engine clamped a larger step count to 39 in silence)
    await expect(startServer({ root, port: 0, computeNiceness: 40 })).rejects.toThrow(/^startServer options\.computeNiceness: expected an integer in 0\.\.39, got 40$/);
    await expect(startServer({ root, port: 0, dataBodyLimit: -1 })).rejects.toThrow(/brainlatentPlugin options\.dataBodyLimit: expected an integer >= 1, got -1/);
    await expect(startServer({ root, port: 0, logger: { level: 'loud' as 'warn' } })).rejects.toThrow(/startServer options\.logger: expected true, false or \{ level: one of fatal, error, warn, info, debug, trace, silent, stream: a writable stream \}, got an object/);
    const s = await startServer({ root, port: 0, defaultMetrics: false, logger: false });
    try {
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('startServer refuses a shutdownDeadlineMs past the timers before any timer is set with it', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      await expect(startServer({ root, port: 0, shutdownDeadlineMs: 2 ** 31 })).rejects.toThrow(/^brainlatentPlugin options\.shutdownDeadlineMs: expected an integer in 0\.\.2147453647, got 2147483648$/);
      await new Promise((r) => setTimeout(r, 50)); // (warnings are emitted on a later tick)
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).not.toContain('TimeoutOverflowWarning');
  });

  it('brainlatent serve names its flags: --root that is not a folder, an empty --token; an empty $BRAINLATENT_TOKEN is unset', async () => {
    const cli = resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
    const env = { ...process.env, BRAINLATENT_SERVE_V8_FLAGS: '0' };
    const run = (...args: string[]) => runCommand(process.execPath, [cli, 'serve', '--port', '0', ...args], { env, hangLimitMs: 30_000 });
    const missing = await run('--root', join(root, 'missing'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/--root: '.*missing' does not exist; expected the folder every path in a request must stay inside/);
    const empty = await run('--root', root, '--token', '');
    expect(empty.status).toBe(1);
    expect(empty.stderr).toMatch(/--token: expected a non-empty secret, got ''/);
    const s = await startServeCli(root, 1, { ...env, BRAINLATENT_TOKEN: '' });
    try {
      expect((await fetch(`${s.url}/v1/jobs`)).status).toBe(200); // loopback, no token
    } finally {
      s.proc.kill('SIGTERM');
      await s.exited;
    }
  });
});
