/**
 * docs/server.md lists every option of the plugin and of startServer, and every flag of `brainlatent serve`: an
 * option added to the typings (as eventLoopResolutionMs was) without a line in the docs fails here.
 */
import { readFileSync } from 'node:fs';

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { registerServeCommand } from '../../ts/cli/commands/serve.js';
import type { ServeOptions } from '../../ts/server/serve.js';
import { PLUGIN_OPTION_KEYS, type BrainlatentPluginOptions } from '../../ts/server/pluginOptions.js';
import { startTestServer } from './helpers.js';

const doc = readFileSync('docs/server.md', 'utf8');
// startServer's own options (ServeOptions beyond the plugin's; a Record, so a key added to the type fails to compile here)
const SERVE_OWN: Record<Exclude<keyof ServeOptions, keyof BrainlatentPluginOptions>, true> = { host: true, port: true, logger: true, computeNiceness: true, trustProxy: true, requestTimeoutMs: true };
const SERVE_OPTION_KEYS = Object.keys(SERVE_OWN);

describe('docs/server.md', () => {
  // `key` or `key: {…}` (as `jobs: {concurrency, maxQueued, workers}` is written)
  it.each([...PLUGIN_OPTION_KEYS, ...SERVE_OPTION_KEYS])('names the option %s', (key) => {
    expect(new RegExp(`\`${key}[\`:]`).test(doc), `docs/server.md does not name \`${key}\``).toBe(true);
  });

  const program = new Command();
  registerServeCommand(program);
  const serve = program.commands.find((c) => c.name() === 'serve')!;
  it.each(serve.options.map((o) => o.long!))('names the flag %s', (flag) => {
    expect(new RegExp(`\`${flag}[\` ]`).test(doc), `docs/server.md does not name \`${flag}\``).toBe(true);
  });

  // review s43: the table said 'running, waiting' where the gauge's labels are active and queued
  it('names the status labels brainlatent_pool_tasks has', async () => {
    const s = await startTestServer();
    try {
      const text = (await s.call('GET', '/metrics')).text;
      const statuses = [...new Set([...text.matchAll(/^brainlatent_pool_tasks\{pool="[^"]+",status="([^"]+)"\}/gm)].map((m) => m[1]))].sort();
      expect(statuses).toEqual(['active', 'queued']);
      const row = doc.split('\n').find((l) => l.startsWith('| `brainlatent_pool_tasks{pool,status}`'));
      expect(row).toBeDefined();
      expect([...row!.matchAll(/status="([^"]+)"/g)].map((m) => m[1]).sort()).toEqual(statuses);
    } finally {
      await s.stop();
    }
  });
});
