/**
 * docs/server.md's example of the plugin in a user's Fastify app, run: with a job running, `app.close()` waits for
 * it (the shutdown deadline) and resolves. With Fastify's default pluginTimeout (10 s) a close that waited longer
 * for a job rejected with AVV_ERR_READY_TIMEOUT; the example's app options must be the ones tested here.
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';

import { brainlatentPlugin } from '../../ts/server/index.js';
import { StartedJobsRunner } from './startedJobsRunner.js';

/** The Fastify options of the docs' example (checked against the docs below). */
const EXAMPLE_APP_OPTIONS = 'Fastify({ pluginTimeout: 0, return503OnClosing: false })';

/** A job that runs until the service closes, then takes `finishMs` more to end (a job finishing within its deadline). */
class SlowToFinishRunner extends StartedJobsRunner {
  constructor(private readonly finishMs: number) {
    super();
  }
  override async close(): Promise<void> {
    await new Promise((r) => setTimeout(r, this.finishMs));
    for (const j of this.board.list({ state: 'running' })) this.board.finish(j.id, 'done', { result: {} });
  }
}

const root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-embed-')));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("the docs' embedding example", () => {
  it('uses the app options tested here', () => {
    const docs = readFileSync(resolve(import.meta.dirname, '..', '..', 'docs', 'server.md'), 'utf8');
    const example = /Inside an existing Fastify app[^`]*```ts\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
    expect(example).toContain(`const app = ${EXAMPLE_APP_OPTIONS};`);
  });

  it('closes with a job running that takes longer than Fastify’s default pluginTimeout to finish', async () => {
    const app = Fastify({ pluginTimeout: 0, return503OnClosing: false });
    const runner = new SlowToFinishRunner(11_000);
    await app.register(brainlatentPlugin, { prefix: '/brainlatent', root, token: null, runner, defaultMetrics: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const r = await fetch(`http://127.0.0.1:${port}/brainlatent/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'demo', out: 'd1' }) });
    expect(r.status, await r.clone().text()).toBe(202);
    const id = ((await r.json()) as { id: string }).id;
    await expect(app.close()).resolves.toBeUndefined();
    expect(runner.board.get(id)!.state).toBe('done');
  }, 60_000);
});
