/**
 * An OutOfMemory's error body says why (`reason`): 'budget' when a memory budget refused the work (the same request
 * fails again), 'allocation' when the machine could not provide the memory (may pass later). In an HTTP error body,
 * and in a failed job's error, also when it crossed the job's process (publicError → JobFailedError → publicError).
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OutOfMemoryError, ShapeError } from '../../ts/errors.js';
import { sendError } from '../../ts/server/httpErrors.js';
import { JobFailedError } from '../../ts/server/jobs/jobProcess.js';
import { publicError } from '../../ts/server/publicError.js';

const app = Fastify();
beforeAll(async () => {
  app.setErrorHandler((e, req, reply) => sendError(e, req, reply));
  app.get('/budget', async () => {
    throw new OutOfMemoryError('ridge fit: the memory budget of 0.001 GiB is below this fit\'s fixed footprint', 'budget');
  });
  app.get('/allocation', async () => {
    throw new OutOfMemoryError('allocating a work buffer of 8 bytes failed', 'allocation');
  });
  app.get('/shape', async () => {
    throw new ShapeError('X has 5 features, the model 4');
  });
  await app.ready();
});
afterAll(() => app.close());

describe("an OutOfMemory's reason in error bodies", () => {
  it('HTTP error bodies carry it; other errors have none', async () => {
    for (const reason of ['budget', 'allocation']) {
      const r = await app.inject({ method: 'GET', url: `/${reason}` });
      expect(r.json()).toMatchObject({ code: 'OutOfMemory', name: 'OutOfMemoryError', reason });
    }
    const r = await app.inject({ method: 'GET', url: '/shape' });
    expect(r.statusCode).toBe(400);
    expect(r.json()).not.toHaveProperty('reason');
  });

  it('an allocation failure is a 503 with Retry-After (it may pass later); a budget refusal a 500 without one', async () => {
    const allocation = await app.inject({ method: 'GET', url: '/allocation' });
    expect([allocation.statusCode, allocation.headers['retry-after']]).toEqual([503, '30']);
    const budget = await app.inject({ method: 'GET', url: '/budget' });
    expect([budget.statusCode, budget.headers['retry-after']]).toEqual([500, undefined]);
  });

  it('(other errors keep their status)', async () => {
    const r = await app.inject({ method: 'GET', url: '/shape' });
    expect(r.statusCode).toBe(400);
    expect(r.json()).not.toHaveProperty('reason');
  });

  it("a failed job's error keeps it across the job's process", () => {
    for (const reason of ['budget', 'allocation'] as const) {
      const child = publicError(new OutOfMemoryError('out of memory', reason));
      expect(child).toMatchObject({ code: 'OutOfMemory', reason });
      const parent = new JobFailedError(JSON.parse(JSON.stringify(child)));
      expect(publicError(parent)).toMatchObject({ name: 'OutOfMemoryError', code: 'OutOfMemory', reason });
    }
    expect(publicError(new ShapeError('x'))).not.toHaveProperty('reason');
  });
});
