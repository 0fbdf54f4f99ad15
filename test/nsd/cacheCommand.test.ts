/**
 * `brainlatent cache list|prune` (dist, as users run it): a named extraction cache kept every entry of other options
 * and of files since changed, and the docs said to delete the folder by hand. Now the entries are listed with size,
 * last use, what they were made with and whether they are stale; prune removes the stale ones and those not used
 * for N days, never one another process is loading, and a dry run removes nothing. A folder that is not a cache is
 * refused.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { defaultNsdCacheDir, defaultNsdCacheLabel } from '../../ts/cli/nsdCacheDir.js';
import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { roiPath } from '../../ts/nsd/paths.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { makeMiniNsd } from './mini.js';

const cli = distModule('cli/main');
async function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await runCommand(process.execPath, [cli, 'cache', ...args], { env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
beforeAll(async () => {
  mini = await makeMiniNsd();
});
afterAll(() => mini?.cleanup());

const DAY = 86_400_000;
const age = (p: string, days: number) => utimesSync(p, new Date(), new Date(Date.now() - days * DAY));

describe('brainlatent cache', () => {
  it('lists every entry, prunes the stale and the unused ones (a dry run and a held entry stay), refuses a foreign folder', async () => {
    const dir = join(mini.tmp, 'cache');
    const root = mini.root;
    const extract = (more: object) => extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir: dir, ...more });
    const entryOf = (key: string) => join(dir, readdirSync(dir).find((n) => n.endsWith(`_${key}`))!);
    // a mask copy in a folder of its own: rewriting it makes its entry stale; a folder gone makes one unreachable
    mkdirSync(join(mini.tmp, 'masks'));
    mkdirSync(join(mini.tmp, 'drive'));
    const mask = join(mini.tmp, 'masks', 'early.nii.gz');
    const away = join(mini.tmp, 'drive', 'early.nii.gz');
    copyFileSync(roiPath(root, 1, 'streams'), mask);
    copyFileSync(roiPath(root, 1, 'streams'), away);
    const session = entryOf((await extract({ zscore: 'session' })).manifest.key);
    const train = entryOf((await extract({ zscore: 'train', averageTest: true })).manifest.key);
    const none = entryOf((await extract({ zscore: 'none', sessions: '1' })).manifest.key);
    const stale = entryOf((await extract({ roi: mask, sessions: '1' })).manifest.key);
    const unreachable = entryOf((await extract({ roi: away, sessions: '1' })).manifest.key);
    utimesSync(mask, new Date(), new Date(Date.now() + 5000));
    rmSync(join(mini.tmp, 'drive'), { recursive: true });

    // 'session' and 'train' not used for 40 days; then 'train' is loaded again, which makes its last use now
    for (const e of [session, train, none]) age(e, 40);
    const loaded = await extract({ zscore: 'train', averageTest: true });
    expect(loaded.fromCache).toBe(true);
    expect(Date.now() - statSync(train).mtimeMs).toBeLessThan(DAY);
    expect(readdirSync(dir).filter((n) => n.includes('.hold-'))).toEqual([]);

    const list = await brainlatent('list', '--dir', dir);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${session}\\n  \\d+\\.\\d kB, created \\S+, last used \\S+\\n  subject 1, streams:early, sessions 1-3, zscore session ddof 0, averaged test, divisor 300\\n  ok`));
    expect(list.stdout).toContain(`${train}\n`);
    expect(list.stdout).toContain('subject 1, streams:early, sessions 1-3, zscore train ddof 1, averaged test, divisor 300\n  ok');
    expect(list.stdout).toContain(`${stale}\n`);
    expect(list.stdout).toContain(`stale: ${mask} has changed since it was made`);
    expect(list.stdout).toContain(`unreachable: ${join(mini.tmp, 'drive')} is not there (a drive not mounted?)`);
    expect(list.stdout).toMatch(/\n5 entries in .*, \d+(\.\d)? [kMG]B; 1 stale\n$/);
    const json = JSON.parse((await brainlatent('list', '--dir', dir, '--json')).stdout);
    expect(json.entries.map((e: { path: string }) => e.path).sort()).toEqual([session, train, none, stale, unreachable].sort());
    const sessionEntry = json.entries.find((e: { path: string }) => e.path === session);
    expect(Date.now() - Date.parse(sessionEntry.lastUsed)).toBeGreaterThan(39 * DAY);
    expect(sessionEntry.options).toEqual({ zscore: 'session', ddof: 0, averageTrain: false, averageTest: true, divisor: 300 });

    // a dry run names what would go and removes nothing
    const before = readdirSync(dir).sort();
    const dry = await brainlatent('prune', '--dir', dir, '--stale', '--older-than', '30', '--dry-run');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain(`would remove ${stale} (`);
    expect(dry.stdout).toMatch(new RegExp(`would remove ${session} \\(\\d+\\.\\d kB\\): not used for 40 days`));
    expect(dry.stdout).toContain(`would remove ${none} (`);
    expect(dry.stdout).not.toContain(train);
    expect(dry.stdout).not.toContain(unreachable);
    expect(dry.stdout).toMatch(/would free \d+(\.\d)? [kMG]B \(3 entries\)/);
    expect(readdirSync(dir).sort()).toEqual(before);

    // 'none' is being loaded by a live process (this one): it stays; a dead process's hold is ignored
    const hold = join(dir, `.${none.split('/').pop()}.hold-${HOST_TAG}-${process.pid}-0badf00d`);
    writeFileSync(hold, '');
    writeFileSync(join(dir, `.${session.split('/').pop()}.hold-${HOST_TAG}-999999999-0badf00d`), '');
    const pruned = await brainlatent('prune', '--dir', dir, '--stale', '--older-than', '30');
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toMatch(new RegExp(`removed ${stale} \\(\\d+\\.\\d kB\\): stale: ${mask} has changed since it was made`));
    expect(pruned.stdout).toContain(`removed ${session} (`);
    expect(pruned.stdout).toContain(`kept ${none}: being loaded by pid ${process.pid}`);
    expect(pruned.stdout).toMatch(/freed \d+(\.\d)? [kMG]B \(2 entries\)/);
    expect(readdirSync(dir).sort()).toEqual([`.${none.split('/').pop()}.hold-${HOST_TAG}-${process.pid}-0badf00d`, ...[train, none, unreachable].map((p) => p.split('/').pop())].sort());
    rmSync(hold);
    expect((await brainlatent('prune', '--dir', dir, '--older-than', '30')).stdout).toContain(`removed ${none} (`);
    expect(existsSync(none)).toBe(false);

    // nothing chosen, a foreign folder, a missing one: refused, nothing removed
    expect((await brainlatent('prune', '--dir', dir)).stderr).toContain('name what to remove: --stale, --older-than <days>, or both');
    const foreign = join(mini.tmp, 'photos');
    mkdirSync(join(foreign, 'subj01_holiday'), { recursive: true });
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const refused = await brainlatent('prune', '--dir', foreign, '--older-than', '1');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`--dir: ${foreign} is not a brainlatent extraction cache: none of its 2 item(s) (notes.txt, subj01_holiday) is an entry`);
    expect(readdirSync(foreign).sort()).toEqual(['notes.txt', 'subj01_holiday']);
    expect((await brainlatent('list', '--dir', join(mini.tmp, 'nope'))).stderr).toContain(`--dir: ${join(mini.tmp, 'nope')} not found`);
    // the global cache before anything was extracted: nothing to do
    const fresh = await runCommand(process.execPath, [cli, 'cache', 'list'], { env: { ...process.env, BRAINLATENT_CACHE: join(mini.tmp, 'empty') } });
    expect(fresh.status).toBe(0);
    expect(fresh.stdout).toBe(`no extraction cache at ${join(mini.tmp, 'empty', 'nsd')} (nothing extracted there yet)\n`);
  });
});

// an extraction killed while it wrote its entry left GBs that cache list counted as nothing and prune never freed (review s44)
describe('temporaries of interrupted writes in a cache folder', () => {
  it('are listed with their size and removed by prune; a live writer\'s are left alone', async () => {
    const dir = join(mini.tmp, 'cache-left');
    await extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', cacheDir: dir, sessions: '1' });
    const entry = readdirSync(dir).find((n) => n.startsWith('subj01_'))!;
    const dead = join(dir, `.${entry}x.tmp-${HOST_TAG}-999999999-0badf00d`);
    const live = join(dir, `.${entry}y.tmp-${HOST_TAG}-${process.pid}-0badf00d`);
    for (const t of [dead, live]) {
      mkdirSync(t);
      writeFileSync(join(t, 'train_betas.npy'), Buffer.alloc(5000));
    }
    const list = await brainlatent('list', '--dir', dir);
    expect(list.stdout).toMatch(/\n1 temporary left by interrupted writes \(their processes are gone\), 5\.\d kB: 'cache prune --stale' removes them\n$/);
    expect(JSON.parse((await brainlatent('list', '--dir', dir, '--json')).stdout).leftTemporaries).toEqual([{ path: dead, bytes: expect.any(Number) }]);
    const dry = await brainlatent('prune', '--dir', dir, '--stale', '--dry-run');
    expect(dry.stdout).toContain(`would remove ${dead} (`);
    expect(existsSync(dead)).toBe(true);
    const pruned = await brainlatent('prune', '--dir', dir, '--stale');
    expect(pruned.stdout).toMatch(new RegExp(`removed ${dead.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(5\\.\\d kB\\): left by an interrupted write \\(its process is gone\\)`));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(join(dir, entry))).toBe(true);
  });
});

// `HOME=` or `XDG_CACHE_HOME=relxdg` put the default cache in the folder the command ran from (review s44)
describe('the default cache folder', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['HOME', 'XDG_CACHE_HOME', 'BRAINLATENT_CACHE']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  it('takes each variable only when absolute, and the password database home for an empty or relative HOME', () => {
    delete process.env.BRAINLATENT_CACHE;
    delete process.env.XDG_CACHE_HOME;
    process.env.HOME = '/h/me';
    expect(defaultNsdCacheDir()).toBe('/h/me/.cache/brainlatent/nsd');
    process.env.XDG_CACHE_HOME = 'relxdg';
    process.env.BRAINLATENT_CACHE = 'relcache';
    expect(defaultNsdCacheDir()).toBe('/h/me/.cache/brainlatent/nsd');
    expect(defaultNsdCacheLabel()).toMatch(/^--cache \(default, under HOME/);
    process.env.XDG_CACHE_HOME = '/x';
    expect(defaultNsdCacheDir()).toBe('/x/brainlatent/nsd');
    process.env.BRAINLATENT_CACHE = '/b';
    expect(defaultNsdCacheDir()).toBe('/b/nsd');
    delete process.env.BRAINLATENT_CACHE;
    delete process.env.XDG_CACHE_HOME;
    for (const h of ['', 'relhome']) {
      process.env.HOME = h;
      expect(isAbsolute(defaultNsdCacheDir())).toBe(true);
      expect(defaultNsdCacheDir()).toBe(join(userInfo().homedir, '.cache', 'brainlatent', 'nsd'));
    }
  });
});
