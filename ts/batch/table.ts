/** The live table of `batch watch`: subjects × stages with each subject's ETA, the batch's rate and ETA underneath. */
import { summarize, type BatchStatus } from './status.js';

function cellText(c: ReturnType<typeof summarize>[number]): string {
  switch (c.state) {
    case 'done':
      return c.jobs > 1 ? `done ${c.jobs}` : 'done';
    case 'skipped':
      return 'skip';
    case 'failed':
      return 'FAILED';
    case 'blocked':
      return 'blocked';
    case 'cancelled':
      // a stage of several jobs: how many of them were done before the cancel
      return c.jobs > 1 ? `cancel ${(c.counts.done ?? 0) + (c.counts.skipped ?? 0)}/${c.jobs} done` : 'cancel';
    case 'waiting':
      return '·';
    case 'active':
      // shards: how many are done (or skipped) of all, and the stage's share of work done
      return c.jobs > 1 ? `${(c.counts.done ?? 0) + (c.counts.skipped ?? 0)}/${c.jobs} ${Math.floor(c.fraction * 100)}%` : `${Math.floor(c.fraction * 100)}%`;
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
      line += (c ? cellText(c) : '').padEnd(width);
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
  lines.push('', `${status.batch}: ${Math.floor(status.progress * 100)}% of ${status.jobs.length} jobs (${k.done} done, ${k.skipped} skipped, ${k.active} running, ${k.waiting} waiting, ${k.failed} failed, ${k.blocked} blocked)${workers}; ${rate}; ${eta}`);
  if (reasons.length) lines.push(...reasons.map((r) => `  ${r}`));
  return lines.join('\n');
}
