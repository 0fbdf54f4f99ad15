/**
 * Demo jobs while they build their world: the build's progress is the job's 'world' stage, and a cancel, a
 * shutdown or the service's death stops the build at its next progress point (the job's own CancelledError,
 * not the job's process killed 10 s later), leaving no temporary behind. A reused world is a skipped stage.
 * Small worlds (4 sessions, 4 test images) keep each build to a few seconds.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isAtomicTemporary } from '../../ts/io/atomicWrite.js';
import { sleep } from '../helpers/waitFor.js';
import { readEvents, startServeCli, startTestServer, until, type SseEvent, type TestServer } from './helpers.js';

const demo = (out: string) => ({ kind: 'demo', out, sessions: 4, testImages: 4, seeds: 1, steps: 3 });

/** Every temporary or moved-aside name under `dir` (files and folders). */
function temporaries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((p) => isAtomicTemporary(basename(p)));
}

/** The job's own cancel of its world build (not its process killed after the grace period). */
const WORLD_CANCELLED = /^demo: cancelled \(the world build stopped; the next demo rebuilds it\)$/;

describe('a demo job over HTTP', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ jobs: { concurrency: 1 } });
  });
  afterAll(async () => s?.stop());

  it("reports the world build as its 'world' stage, and a DELETE stops the build itself, leaving no temporary", async () => {
    const r = await s.call('POST', '/v1/jobs', demo('d1'));
    expect(r.status, r.text).toBe(202);
    const id = r.json.id;
    let deleted = false;
    const events = await readEvents(`${s.url}/v1/jobs/${id}/events`, {}, (e) => {
      // well into the build: after some progress past its start
      if (!deleted && e.event === 'progress' && e.data.stage === 'world' && e.data.fraction > 0) {
        deleted = true;
        void s.call('DELETE', `/v1/jobs/${id}`);
      }
    });
    const world = events.filter((e) => e.event === 'progress' && e.data.stage === 'world').map((e) => e.data);
    expect(world.some((p) => p.fraction > 0)).toBe(true);
    for (const p of world) {
      expect(p).toMatchObject({ index: 1, stages: 8 });
      expect(p.message).toMatch(/^(stimuli|stimulus file|betas|catalogue|models): \d+\/\d+ (images|files|sessions|scenes)$/);
    }
    expect(events.filter((e) => e.event === 'stage').map((e) => [e.data.stage, e.data.status])).toEqual([['world', 'running']]);
    const last = events[events.length - 1];
    expect(last.event).toBe('error');
    expect(last.data.state).toBe('cancelled');
    expect(last.data.error.message).toMatch(WORLD_CANCELLED);
    expect(temporaries(join(s.root, 'd1'))).toEqual([]);
    expect(existsSync(join(s.root, 'd1', 'world', 'world.json'))).toBe(false);
  });

  it("runs a demo to its end; the same body again reuses the world and resumes the run: every stage 'skipped', none timed again", async () => {
    const first = await s.call('POST', '/v1/jobs', demo('d2'));
    const done = await readEvents(`${s.url}/v1/jobs/${first.json.id}/events`);
    expect(done[done.length - 1].event, JSON.stringify(done[done.length - 1].data.error)).toBe('result');
    expect(done.filter((e) => e.event === 'stage').map((e) => [e.data.stage, e.data.status])).toEqual(first.json.stages.map((st: string) => [st, 'running']));
    const count = async (stage: string) =>
      Number(new RegExp(`^brainlatent_job_stage_duration_seconds_count\\{kind="demo",stage="${stage}"\\} (\\d+)$`, 'm').exec((await s.call('GET', '/metrics')).text)?.[1] ?? 0);
    expect(await count('world')).toBe(1);
    const again = await s.call('POST', '/v1/jobs', demo('d2'));
    const resumed = await readEvents(`${s.url}/v1/jobs/${again.json.id}/events`);
    expect(resumed[resumed.length - 1].event).toBe('result');
    expect(resumed.filter((e) => e.event === 'stage').map((e) => [e.data.stage, e.data.status])).toEqual(again.json.stages.map((st: string) => [st, 'skipped']));
    expect(await count('world')).toBe(1);
    expect(await count('img2img')).toBe(1);
  });
});

describe('a demo job when `brainlatent serve` stops during its world build', () => {
  const linux = existsSync('/proc/self/stat');

  const serve = startServeCli;

  /** Linux's /proc: a process's parent and whether it is still running (a zombie has ended). */
  function stat(pid: number): { ppid: number; running: boolean } | null {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
      return { ppid: Number(ppid), running: state !== 'Z' && state !== 'X' };
    } catch {
      return null;
    }
  }
  function childOf(pid: number, entry: string): number | undefined {
    for (const e of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (stat(Number(e))?.ppid === pid && readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(entry)) return Number(e);
      } catch {
        // gone meanwhile
      }
    }
    return undefined;
  }

  /**
   * A service with a demo job; `act` runs at the job's first world progress, in the handler that receives it, with
   * the job's process ids (what it goes on to do in the background is awaited once the job's stream has ended).
   */
  async function duringWorld(deadline: number, act: (srv: Awaited<ReturnType<typeof serve>>, pids: { spawner: number; job: number }) => unknown) {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'bl-demo-stop-')));
    const srv = await serve(root, deadline);
    try {
      const r = await fetch(`${srv.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demo('demo')) });
      const id = ((await r.json()) as { id: string }).id;
      let pids: { spawner: number; job: number } | undefined;
      let acted: Promise<void> = Promise.resolve();
      const seen: SseEvent[] = await readEvents(`${srv.url}/v1/jobs/${id}/events`, {}, (e) => {
        if (!pids && e.event === 'progress' && e.data.stage === 'world') {
          const spawner = childOf(srv.proc.pid!, 'spawnerProcess.js')!;
          pids = { spawner, job: childOf(spawner, 'jobChild.js')! };
          acted = (async () => void (await act(srv, pids!)))();
          acted.catch(() => {}); // (awaited below, once the stream has ended)
        }
      }).catch(() => []); // a killed service ends the stream without its last event
      await acted;
      return { root, srv, seen, pids: pids! };
    } catch (e) {
      srv.proc.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
      throw e;
    }
  }

  it.runIf(linux)('SIGTERM (a 1 s deadline): the build is cancelled by the job itself, the stream ends with its error then `shutdown`, and the service exits 0', async () => {
    // The job's process is frozen (SIGSTOP) at its first world progress, in the handler that receives it, before the
    // service gets SIGTERM: the build outlasts the deadline however fast it would run. (Left to run, a build that
    // ended before the deadline's cancel reached one of its progress points, ~4 s in CI and less on a fast machine,
    // was cancelled in the run's stages: another message, more stages.) It goes on (SIGCONT) once the service has
    // said it is finishing its jobs and the deadline has passed, the cancel waiting for it: the build it resumes has
    // all but its start ahead, and stops at its next progress point.
    const deadline = 1;
    const { root, srv, seen, pids } = await duringWorld(deadline, async (srv, { job }) => {
      process.kill(job, 'SIGSTOP');
      try {
        srv.proc.kill('SIGTERM');
        await until(() => (srv.output().includes(`SIGTERM: finishing running jobs (up to ${deadline} s)`) ? true : undefined), 60_000, "the service's shutdown line");
        await sleep(deadline * 1000 + 1000);
      } finally {
        process.kill(job, 'SIGCONT');
      }
    });
    try {
      expect(await srv.exited).toBe(0);
      expect(pids.job).toBeGreaterThan(0);
      const names = seen.map((e) => e.event);
      expect(names.slice(-2)).toEqual(['error', 'shutdown']);
      const error = seen[seen.length - 2].data;
      expect(error.state).toBe('cancelled');
      // (a shutdown's cancel says so: a user's cancel reads WORLD_CANCELLED alone)
      expect(error.error.message).toBe(`the service shut down while the job ran (its shutdown deadline passed): demo: cancelled (the world build stopped; the next demo rebuilds it)`);
      expect(seen.filter((e) => e.event === 'stage').map((e) => e.data.stage)).toEqual(['world']);
      expect(temporaries(join(root, 'demo'))).toEqual([]);
    } finally {
      srv.proc.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  });

  it.runIf(linux)("kill -9 of the service: its spawner cancels the job, which stops its build (no world.json, no temporary), and both processes end", async () => {
    const { root, srv, pids } = await duringWorld(30, (srv) => srv.proc.kill('SIGKILL'));
    try {
      await srv.exited;
      expect(pids.job).toBeGreaterThan(0);
      // "stops rather than hangs": without the cancel the job's process would build on until it was killed 10 s later
      await until(() => (stat(pids.job)?.running || stat(pids.spawner)?.running ? undefined : true), 60_000, "the job's process and the spawner to end");
      // the build stopped where it was (a build left to run finishes its world in a few seconds)
      expect(existsSync(join(root, 'demo', 'world', 'world.json'))).toBe(false);
      expect(temporaries(join(root, 'demo'))).toEqual([]);
    } finally {
      srv.proc.kill('SIGKILL');
      for (const pid of [pids?.job, pids?.spawner]) {
        if (pid && stat(pid)?.running) process.kill(pid, 'SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    }
  });
});
