// A run folder holding a sub-folder this process cannot read (another user's, mode 000: root reads it anyway, so
// readdir is made to refuse it here): its outputs are still seen, so another config is refused and --force clears them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const readdir = (async (path: string, options?: unknown) => {
    if (String(path).endsWith('/private')) throw Object.assign(new Error(`EACCES: permission denied, scandir '${path}'`), { code: 'EACCES' });
    return (fs.readdir as (p: string, o?: unknown) => Promise<unknown>)(path, options);
  }) as typeof fs.readdir;
  return { ...fs, readdir, default: { ...fs, readdir } };
});

const { clearingPlan, clearRunFolder, runFolderConflict } = await import('../../ts/pipeline/runFolder.js');
const { filesUnder } = await import('../helpers/filesUnder.js');

const root = mkdtempSync(join(tmpdir(), 'bl-unreadable-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a run folder with an unreadable sub-folder', () => {
  it('is still refused to another config, and --force clears the readable outputs, keeping (and naming) the folder', async () => {
    const out = join(root, 'run');
    mkdirSync(join(out, 'stages'), { recursive: true });
    mkdirSync(join(out, 'private'));
    writeFileSync(join(out, 'private', 'x'), 'theirs');
    writeFileSync(join(out, 'run.json'), JSON.stringify({ format: 'brainlatent-run', version: 1, configHash: 'old', config: {}, versions: {} }));
    writeFileSync(join(out, 'stages', 'evaluate.json'), '{}');
    writeFileSync(join(out, 'metrics.json'), 'old');
    expect(await runFolderConflict({ out } as never)).toMatch(/holds another run's outputs \(metrics\.json, stages;/);
    expect(await clearingPlan(out)).toMatch(/\(metrics\.json, run\.json, stages\); other files there stay \(1 no run wrote: private\/ \(unreadable: kept\)\)$/);
    await clearRunFolder(out);
    expect(filesUnder(out)).toEqual(['private/x', 'run.json']);
  });
});
