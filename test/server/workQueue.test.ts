import { describe, expect, it, vi } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { QueueFullError, WorkQueue } from '../../ts/server/workQueue.js';

/** A task that runs until released (or rejected), and says whether it started. */
function heldTask<T>(value: T) {
  let release!: () => void;
  let fail!: (e: Error) => void;
  const t = { started: false, release: () => release(), fail: (e: Error) => fail(e) };
  const task = () => {
    t.started = true;
    return new Promise<T>((ok, no) => {
      release = () => ok(value);
      fail = no;
    });
  };
  return { ...t, task, get started() { return t.started; } };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('WorkQueue', () => {
  it('takes a waiting task whose signal aborts out of the queue, so a live task gets its place', async () => {
    const q = new WorkQueue('img2img', 1, 2);
    const running = heldTask('first');
    const first = q.run(running.task);
    const leaving = [new AbortController(), new AbortController()];
    const gone = leaving.map((a, i) => q.run(heldTask(`gone ${i}`).task, a.signal).catch((e: unknown) => e));
    expect(q.queued).toBe(2);
    await expect(q.run(heldTask('refused').task)).rejects.toBeInstanceOf(QueueFullError);
    for (const a of leaving) a.abort();
    await tick();
    expect(q.queued).toBe(0);
    expect(q.active).toBe(1);
    for (const e of await Promise.all(gone)) {
      expect(e).toBeInstanceOf(CancelledError);
      expect((e as Error).message).toBe('img2img: cancelled while queued');
    }
    // the places are free: a live task waits instead of being refused, and runs next
    const live = heldTask('live');
    const next = q.run(live.task);
    expect(q.queued).toBe(1);
    running.release();
    expect(await first).toBe('first');
    await tick();
    expect(live.started).toBe(true);
    live.release();
    expect(await next).toBe('live');
    expect([q.active, q.queued]).toEqual([0, 0]);
  });

  it('refuses a task whose signal has already aborted without running it, and lets a running task finish', async () => {
    const q = new WorkQueue('img2img', 1, 1);
    const a = new AbortController();
    a.abort();
    const t = heldTask(1);
    const refused = q.run(t.task, a.signal).catch((e: unknown) => e);
    await tick();
    expect(t.started).toBe(false);
    expect(await refused).toBeInstanceOf(CancelledError);
    expect(q.active).toBe(0);
    // the signal is the task's to act on once it runs: the queue does not end it
    const b = new AbortController();
    const running = heldTask('ran');
    const p = q.run(running.task, b.signal);
    b.abort();
    running.release();
    expect(await p).toBe('ran');
    expect(q.active).toBe(0);
  });

  it('times only tasks that ran to their end: cancelled and failed ones do not pull Retry-After down', async () => {
    // the queue's clock, moved by hand: a task "takes" what it adds
    let now = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
    try {
      const q = new WorkQueue('img2img', 1, 8);
      await q.run(async () => {
        now += 2000;
      });
      // the mean after one 2-s task: 0.8 · 0.05 + 0.2 · 2 = 0.44 s; 1 running + 4 waiting → ceil(5 · 0.44) = 3
      const fill = () => {
        const hold = heldTask('hold');
        const running = q.run(hold.task);
        const leaving = Array.from({ length: 4 }, () => {
          const a = new AbortController();
          return { a, p: q.run(async () => 0, a.signal).catch((e: unknown) => e) };
        });
        return { hold, running, leaving };
      };
      let f = fill();
      expect(q.retryAfter()).toBe(3);
      // the waiters leave, the running task fails at once (a 400 from inside it), five more fail at once
      for (const w of f.leaving) w.a.abort();
      await tick();
      f.hold.fail(new Error('a 400 from inside the task'));
      await expect(f.running).rejects.toThrow('a 400');
      for (let i = 0; i < 5; i++) await expect(q.run(async () => Promise.reject(new Error('bad request')))).rejects.toThrow('bad request');
      // still the pace of the task that ran (timed, the six instant ones would have made it 0.44 · 0.8⁶ ≈ 0.12 s: 1)
      f = fill();
      expect(q.retryAfter()).toBe(3);
      for (const w of f.leaving) w.a.abort();
      f.hold.release();
      await f.running;
    } finally {
      clock.mockRestore();
    }
  });
});
