/** The live table of `batch watch`: subjects × stages with each subject's ETA, the batch's rate and ETA underneath. */
import { isFinished, summarize, type BatchStatus, type JobInfo } from './status.js';

type Cell = ReturnType<typeof summarize>[number];

/**
 * The jobs a cell counts: an img2img cell's shards (not its merge job, which is in the cell too but is no shard), else
 * all of its jobs.
 */
function countedJobs(c: Cell, jobs: readonly JobInfo[]): { n: number; done: number; fraction: number } {
  const mine = jobs.filter((j) => j.subject === c.subject && j.analysis === c.analysis && j.stage === c.stage);
  const shards = mine.filter((j) => j.shard !== undefined);
  if (!shards.length) return { n: c.jobs, done: (c.counts.done ?? 0) + (c.counts.skipped ?? 0), fraction: c.fraction };
  const done = shards.filter((j) => j.state === 'done' || j.state === 'skipped').length;
  const fraction = shards.reduce((a, j) => a + (isFinished(j.state) ? 1 : j.state === 'active' ? j.fraction : 0), 0) / shards.length;
  return { n: shards.length, done, fraction };
}

function cellText(c: Cell, jobs: readonly JobInfo[]): string {
  const k = countedJobs(c, jobs);
  switch (c.state) {
    case 'done':
      return k.n > 1 ? `done ${k.n}` : 'done';
    case 'skipped':
      return 'skip';
    case 'failed':
      return 'FAILED';
    case 'blocked':
      return 'blocked';
    case 'cancelled':
      // a stage of several jobs: how many of them were done before the cancel
      return k.n > 1 ? `cancel ${k.done}/${k.n} done` : 'cancel';
    case 'waiting':
      return '·';
    case 'active':
      // shards: how many are done (or skipped) of all, and the stage's share of work done
      return k.n > 1 ? `${k.done}/${k.n} ${Math.floor(k.fraction * 100)}%` : `${Math.floor(k.fraction * 100)}%`;
  }
}

const duration = (s: number) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

export function renderTable(status: BatchStatus & { workers?: Record<string, number> }): string {
  const cells = summarize(status.jobs).filter((c) => c.stage !== 'subject');
  const columns: string[] = [];
  for (const c of cells) {
    const col = `${c.analysis ? `${c.analysis}/` : ''}${c.stage}`;
    if (!columns.includes(col)) columns.push(col);
  }
  const subjects = [...new Set(cells.map((c) => c.subject))];
  const width = Math.max(8, ...columns.map((c) => c.length)) + 2;
  const sw = Math.max(7, ...subjects.map((s) => s.length)) + 2;
  const lines = [`${'subject'.padEnd(sw)}${columns.map((c) => c.padEnd(width)).join('')}ETA`];
  const perSubject = new Map((status.subjects ?? []).map((p) => [p.subject, p]));
  const reasons: string[] = [];
  for (const s of subjects) {
    let line = s.padEnd(sw);
    for (const col of columns) {
      const c = cells.find((x) => x.subject === s && `${x.analysis ? `${x.analysis}/` : ''}${x.stage}` === col);
      line += (c ? cellText(c, status.jobs) : '').padEnd(width);
      if (c?.state === 'failed' && c.reason) reasons.push(`${s} ${col}: ${c.reason}`);
    }
    const p = perSubject.get(s);
    if (p) line += p.state !== 'running' ? p.state : p.etaSeconds !== null ? `${Math.floor(p.progress * 100)}%, ${duration(p.etaSeconds)}` : `${Math.floor(p.progress * 100)}%, –`;
    lines.push(line.trimEnd());
  }
  const k = status.counts;
  const rate = status.jobsPerMinute ? `${status.jobsPerMinute.toFixed(1)} jobs/min` : 'rate: –';
  const eta = status.state === 'running' ? (status.etaSeconds !== null ? `ETA ${duration(status.etaSeconds)}` : 'ETA –') : status.state;
  const workers = status.workers ? `, ${Object.keys(status.workers).length} worker(s) busy` : '';
  lines.push('', `${status.batch}: ${Math.floor(status.progress * 100)}% of ${status.jobs.length} jobs (${k.done} done, ${k.skipped} skipped, ${k.active} running, ${k.waiting} waiting, ${k.failed} failed, ${k.blocked} blocked, ${k.cancelled} cancelled)${workers}; ${rate}; ${eta}`);
  if (reasons.length) lines.push(...reasons.map((r) => `  ${r}`));
  return lines.join('\n');
}
