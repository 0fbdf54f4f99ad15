/**
 * A test server with one finished job whose run folder, run1, holds what `write` puts there: for the tests of
 * the files route (what a served run folder shows). `write` gets the run folder and the service's root, the
 * absolute paths a real job would record.
 */
import { LocalJobRunner } from '../../ts/server/jobs/LocalJobRunner.js';
import { startTestServer, until, type TestServer } from '../server/helpers.js';

export interface ServedRunFolder {
  s: TestServer;
  /** The job whose run folder is run1. */
  id: string;
}

export async function serveRunFolder(write: (out: string, root: string) => void): Promise<ServedRunFolder> {
  const runner = new LocalJobRunner({
    concurrency: 1,
    execute: async (spec) => {
      write(spec.out, spec.out.slice(0, spec.out.length - '/run1'.length));
      return {};
    },
  });
  const s = await startTestServer({ runner });
  const job = await s.call('POST', '/v1/jobs', { kind: 'demo', out: 'run1' });
  if (job.status !== 202) throw new Error(`POST /v1/jobs: status ${job.status}, expected 202: ${job.text}`);
  const id: string = job.json.id;
  await until(async () => ((await s.call('GET', `/v1/jobs/${id}`)).json.state === 'done' ? true : undefined), 20_000, 'the job to end');
  return { s, id };
}
