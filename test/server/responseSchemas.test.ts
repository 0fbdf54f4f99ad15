/**
 * The response schemas' descriptions (what a client generator's types and the OpenAPI document say) agree with what
 * the service sends: an ended job's progress has no rate and no ETA (any end state, not only "until known"), a failed
 * batch job carries a result, and an OutOfMemory of reason 'allocation' is a 503.
 */
import { describe, expect, it } from 'vitest';

import { JobBoard } from '../../ts/server/jobs/jobBoard.js';
import { errorResponses, JobViewSchema } from '../../ts/server/responseSchemas.js';

type Described = { description?: string; properties?: Record<string, Described> };
const progress = (JobViewSchema.properties as Record<string, Described>).progress;
const field = (name: string) => progress.properties![name].description ?? '';

describe('response schema descriptions', () => {
  it("say an ended job's rate and etaSeconds are null, as the board makes them for every end state", () => {
    for (const state of ['done', 'failed', 'cancelled'] as const) {
      const board = new JobBoard();
      board.add({ id: `j-${state}`, kind: 'batch', out: 'r', stages: ['batch'] }, '/tmp/r');
      board.started(`j-${state}`);
      board.progress(`j-${state}`, { stage: 'batch', index: 1, stages: 1, fraction: 1 });
      expect(board.get(`j-${state}`)!.progress).toMatchObject({ etaSeconds: 0 });
      board.finish(`j-${state}`, state);
      expect(board.get(`j-${state}`)!.progress).toMatchObject({ rate: null, etaSeconds: null });
    }
    expect(field('rate')).not.toMatch(/null until known\)?$/);
    expect(field('rate')).toMatch(/once the job has ended/);
    expect(field('etaSeconds')).toMatch(/once the job has ended/);
    // at fraction 1 the ETA is 0 even when no rate is known
    expect(field('etaSeconds')).toMatch(/0 when the fraction is 1/);
    expect(progress.description).toMatch(/once the job has ended, the last stage/);
  });

  it("say a failed batch job's result is there too, and list OutOfMemory among the 503s and 500s", () => {
    expect((JobViewSchema.properties as Record<string, Described>).result.description).toMatch(/failed/);
    expect(errorResponses()[503].description).toMatch(/OutOfMemory with `reason` 'allocation'/);
    expect(errorResponses()[500].description).toMatch(/OutOfMemory with `reason` 'budget'/);
    expect(errorResponses(400)[400].description).toMatch(/`problems` lists it: one per problem of a body or config that fails validation, each naming the field; else the message as the one problem/);
  });
});
