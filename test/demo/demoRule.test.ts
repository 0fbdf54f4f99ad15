/**
 * `demo --steps 4` warned "set img2img.rule to 'diffusers'", a config field the demo's user has no way to set (no
 * --config). The demo has reconstruct's --rule now (same choices and check), and the run's messages name its flags.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const root = mkdtempSync(join(tmpdir(), 'bl-demo-rule-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const demo = (...args: string[]) =>
  runCommand(process.execPath, [distModule('cli/main'), 'demo', '--out', join(root, 'd'), '--image-size', '16', '--test-images', '4', '--seeds', '1', '--dry-run', ...args]);

describe('demo --rule', () => {
  it("the few-steps warning names the demo's flags; --rule diffusers silences it; a bad rule is refused as reconstruct's", { timeout: 240_000 }, async () => {
    const few = await demo('--steps', '4');
    expect(few.status, few.stderr).toBe(0);
    expect(few.stdout).toMatch(/warning: --steps 4 with --rule compvis \(the default, TN's noise level\): .*; use --rule diffusers \(noise at the first step that runs\), or use 8 steps or more/);
    expect(few.stdout + few.stderr).not.toMatch(/img2img\.rule|--config/);
    const diffusers = await demo('--steps', '4', '--rule', 'diffusers');
    expect(diffusers.status, diffusers.stderr).toBe(0);
    expect(diffusers.stdout + diffusers.stderr).not.toMatch(/compvis|8 steps or more/);
    const bad = await demo('--rule', 'x');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/brainlatent: InvalidArgumentError: demo: --rule \(rule\): expected one of diffusers, compvis, got 'x'/);
  });
});
