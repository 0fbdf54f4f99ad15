/**
 * A JobRunner for server tests that need jobs but no job process: a submitted job starts at once (one stage, 'world')
 * and runs until the test ends it on `board`. Subclasses change what cancel or close does.
 */
import type { JobRunner, JobSpec, RunnerReadiness } from '../../ts/server/jobs/JobRunner.js';
import { JobBoard } from '../../ts/server/jobs/jobBoard.js';
import type { JobView } from '../../ts/server/jobs/types.js';

export class StartedJobsRunner implements JobRunner {
  readonly board = new JobBoard();
  constructor(private readonly readyDetail = 'test') {}
  async submit(spec: JobSpec): Promise<JobView> {
    this.board.add({ id: spec.id, kind: spec.kind, out: spec.outShown, stages: ['world'] }, spec.out);
    this.board.started(spec.id);
    return this.board.get(spec.id)!;
  }
  async cancel(id: string): Promise<JobView | undefined> {
    return this.board.get(id);
  }
  queueDepth(): number {
    return 0;
  }
  async ready(): Promise<RunnerReadiness> {
    return { ok: true, detail: this.readyDetail };
  }
  async close(): Promise<void> {}
}
