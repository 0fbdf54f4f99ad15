/**
 * A test run leaves nothing in the OS temp folder (test/setup/runTempFolder.ts): its workers and their children see
 * one run folder as os.tmpdir(), removed when the run ends; a killed run's folder is removed by the next run. A child
 * that a file started outside a test is killed, and a tempDir made outside a test removed, when the file ends
 * (test/setup/fileEnd.ts). Before, ~10 runs left 3.2 GB of test folders in /tmp, and a beforeAll's child ran on after
 * its file (its hang-limit timer died with the worker).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { HOST_TAG } from '../ts/io/atomicWrite.js';
import { processAlive } from '../ts/io/processAlive.js';
import { commandOutput, runCommand } from './helpers/nodeChild.js';
import { tempDir } from './helpers/tempDir.js';
import { RUN_TEMP_PREFIX } from './setup/runTempFolder.js';
import { deadPid } from './helpers/deadPid.js';

const runFolderName = (pid: number) => new RegExp(`^${RUN_TEMP_PREFIX}-${HOST_TAG}-${pid}-[A-Za-z0-9]{6}$`);

describe("this run's temporary folder", () => {
  it("is os.tmpdir() in a worker: <os tmp>/bl-test-<host>-<the vitest process's pid>-XXXXXX", () => {
    expect(basename(tmpdir())).toMatch(runFolderName(process.ppid));
  });

  it('is the temp folder of the processes a test starts (node, python)', async () => {
    expect(await commandOutput(process.execPath, ['-e', "process.stdout.write(require('os').tmpdir())"])).toBe(tmpdir());
    expect((await commandOutput('/usr/bin/python3', ['-c', 'import tempfile; print(tempfile.gettempdir())'])).trim()).toBe(tmpdir());
  });
});

describe('tempDir', () => {
  let made = '';
  it('makes a folder in the OS temp folder', () => {
    made = tempDir('bl-tempdir-');
    writeFileSync(join(made, 'x'), 'x');
    expect(dirname(made)).toBe(tmpdir());
  });

  it('removed it when the test that made it ended', () => {
    expect(readdirSync(tmpdir())).not.toContain(basename(made));
  });
});

describe('a nested vitest run with the project config', () => {
  let parent = '';
  let childPid = 0;
  afterAll(async () => {
    if (childPid && processAlive(childPid)) process.kill(childPid, 'SIGKILL');
    await rm(parent, { recursive: true, force: true });
  });

  it("removes its run folder at its end, and a dead run's, not a live run's; a file's beforeAll child and tempDir end with the file", async () => {
    parent = await mkdtemp(join(tmpdir(), 'nested-'));
    const reportDir = await mkdtemp(join(tmpdir(), 'report-'));
    const fileTemps = join(reportDir, 'file-temps');
    mkdirSync(fileTemps);
    const report = join(reportDir, 'report.json');
    // a run killed before its teardown (a process that has exited), and a run still going (this worker)
    const dead = deadPid();
    const killedRun = join(parent, `${RUN_TEMP_PREFIX}-${HOST_TAG}-${dead}-aB3xYz`);
    const liveRun = join(parent, `${RUN_TEMP_PREFIX}-${HOST_TAG}-${process.pid}-aB3xYz`);
    for (const d of [killedRun, liveRun]) {
      mkdirSync(join(d, 'bl-modelfiles-x1y2z3'), { recursive: true });
      writeFileSync(join(d, 'bl-modelfiles-x1y2z3', 'model.onnx'), 'x');
    }
    // (the nested run is a run of its own, not a worker of this one)
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'TEST'));
    const r = await runCommand(process.execPath, [resolve('node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/setup/fixture/vitest.config.ts'], {
      env: { ...env, TMPDIR: parent, BL_RUN_TEMP_REPORT: report, BL_FILE_TEMP_PARENT: fileTemps },
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const seen = JSON.parse(readFileSync(report, 'utf8')) as { worker: string; child: string; workerParent: number };
    childPid = Number(readFileSync(`${report}.child-pid`, 'utf8'));
    expect(dirname(seen.worker)).toBe(parent);
    expect(basename(seen.worker)).toMatch(runFolderName(seen.workerParent));
    expect(seen.child).toBe(seen.worker);
    // its own folder (with the file its test left) and the killed run's are gone; the live run's is kept
    expect(readdirSync(parent)).toEqual([basename(liveRun)]);
    expect(processAlive(childPid)).toBe(false);
    // the folder tempDir made in the fixture's beforeAll was removed when the file ended
    expect(readdirSync(fileTemps)).toEqual([]);
  });
});
