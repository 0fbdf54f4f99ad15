/**
 * Resolves once this process has used `ms` of CPU time more than at the call (an engine job computes: the JS thread,
 * awaiting, does not), or `job` settled. An abort right after a call could land while its job still waited for its
 * engine thread ('… aborted before it started' on a loaded machine), not in the run it means to interrupt.
 */
export async function computing(ms: number, job: Promise<unknown>): Promise<void> {
  let settled = false;
  job.then(
    () => (settled = true),
    () => (settled = true),
  );
  const start = process.cpuUsage();
  for (;;) {
    await new Promise((r) => setTimeout(r, 2));
    const used = process.cpuUsage(start);
    if (settled || (used.user + used.system) / 1000 >= ms) return;
  }
}
