/**
 * Which img2img shards a merge counts as its own submission's work (shardsRun, the U-Net sums): through BullMQ a
 * shard that computed its images while Redis was away could not record that, ran again and was skipped on its
 * marker, and the merge counted it as not run. Every job now carries its submission, a shard's marker records it,
 * and the merge counts a marker that names its own submission whatever its job reported. (The real merge over real
 * markers: unetWork.test.ts.)
 */
import type { FlowJob } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { shardLabel, shardNodeId, submissionId, type BatchNode, type BatchPlan } from '../../ts/batch/graph.js';
import { ranInThisSubmission } from '../../ts/batch/runNode.js';
import { subjectFlow, type JobData } from '../../ts/batch/submit.js';
import type { ReconstructConfig } from '../../ts/pipeline/config.js';

const SUB = 'nsd@2025-01-02T03:04:05.678Z';
const EARLIER = 'nsd@2025-01-01T00:00:00.000Z';
const SHARD = 'nsd.subj01.recon.img2img.k0-0.i0-3';

describe('ranInThisSubmission', () => {
  it('counts a shard whose job ran in this submission, whatever its marker says', () => {
    expect(ranInThisSubmission({ submission: EARLIER }, SHARD, { ranDeps: [SHARD], submission: SUB })).toBe(true);
    expect(ranInThisSubmission({}, SHARD, { ranDeps: [SHARD], submission: SUB })).toBe(true);
  });

  it('counts a shard whose job was skipped when its marker names this submission (made by an attempt Redis did not record)', () => {
    expect(ranInThisSubmission({ submission: SUB }, SHARD, { ranDeps: [], submission: SUB })).toBe(true);
    expect(ranInThisSubmission({ submission: SUB }, SHARD, { submission: SUB })).toBe(true);
  });

  it("does not count a skipped shard of an earlier submission, an old marker without one, or any marker when the merge was not told its own", () => {
    expect(ranInThisSubmission({ submission: EARLIER }, SHARD, { ranDeps: ['nsd.subj01.recon.img2img.k1-1.i0-3'], submission: SUB })).toBe(false);
    expect(ranInThisSubmission({}, SHARD, { ranDeps: [], submission: SUB })).toBe(false);
    expect(ranInThisSubmission({ submission: SUB }, SHARD, { ranDeps: [] })).toBe(false);
  });
});

describe('submissionId', () => {
  it("is the batch's name @ the submission time (an ISO string as recorded, or a local run's start in ms)", () => {
    expect(submissionId('nsd', '2025-01-02T03:04:05.678Z')).toBe(SUB);
    expect(submissionId('nsd', Date.parse('2025-01-02T03:04:05.678Z'))).toBe(SUB);
  });
});

describe('subjectFlow', () => {
  it('tells every job its submission: the chains, the shared jobs and the shards a merge adds when it runs', () => {
    const config = { out: '/x/subj01/recon' } as ReconstructConfig;
    const shard = { imageStart: 0, imageEnd: 4, seedStart: 0, seedEnd: 1 };
    const node = (id: string, stage: string, work: BatchNode['work'], deps: string[] = []): BatchNode => ({
      id: `nsd.subj01.${id}`, batch: 'nsd', subject: 'subj01', analysis: id.startsWith('recon') ? 'recon' : null, stage, queue: 'compute', deps, work,
    });
    const betas = node('betas', 'betas', { kind: 'betas', extractions: [] });
    const zonly = node('recon.zonly', 'zonly', { kind: 'stage', config, stage: 'zonly' });
    const mergeId = 'nsd.subj01.recon.img2img';
    const sh = node(`recon.img2img.${shardLabel(shard)}`, 'img2img', { kind: 'shard', config, shard }, [zonly.id]);
    const merge = node('recon.img2img', 'img2img', { kind: 'merge', config, shards: [shard] }, [sh.id]);
    const root = node('subject', 'subject', { kind: 'subject' });
    const plan: BatchPlan = {
      id: 'nsd', out: '/x', hash: 'h', retry: { attempts: 1, backoffMs: 0 },
      subjects: [{ name: 'subj01', root, shared: [betas], analyses: [{ name: 'recon', kind: 'reconstruct', out: config.out, steps: [zonly, { shards: [sh] }, merge] }] }],
    };
    expect(sh.id).toBe(shardNodeId(mergeId, shard));
    const seen: Record<string, string | undefined> = {};
    const walk = (f: FlowJob) => {
      const data = f.data as JobData;
      seen[data.node.id] = data.submission;
      for (const c of [...(f.children ?? []), ...(data.spawn ?? [])]) walk(c);
    };
    walk(subjectFlow(plan, plan.subjects[0], SUB));
    expect(seen).toEqual({ [root.id]: SUB, [betas.id]: SUB, [zonly.id]: SUB, [merge.id]: SUB, [sh.id]: SUB });
  });
});
