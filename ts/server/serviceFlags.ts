/**
 * The V8 flags the service's process runs with. V8 reads its flags once, as the process starts, so `brainlatent
 * serve` started without them runs itself again with them, in place: execv keeps the pid, the parent, stdio, the
 * environment and the session, so a supervisor's signals and a terminal's Ctrl-C reach the service itself.
 *
 * --no-memory-reducer: some seconds after the heap has grown, V8's memory reducer runs a compacting collection
 * whenever the program looks idle, to give the memory back; its last pause moves the whole live heap at once
 * (~40 MiB in the service: 22–43 ms measured while a job ran, the longest stall left on its event loop; the
 * 20 ms lag target of `bench serve` is missed by it alone). Without it the heap keeps its high-water size between
 * collections (the service's is ~80 MiB; large bodies and answers live in predict threads or outside the heap, and
 * ridge models' arrays never reach this heap: a dropped model's SharedArrayBuffers would wait here for a collection
 * that may not come; predictPool.ts).
 * An embedding app that wants the same gives Node the flag itself (`node --no-memory-reducer app.js`).
 */
export const SERVICE_V8_FLAGS: readonly string[] = ['--no-memory-reducer'];

/** Set to 0 to run the service with the flags Node was started with (e.g. to compare). */
export const SERVICE_FLAGS_ENV = 'BRAINLATENT_SERVE_V8_FLAGS';

/**
 * Returns when this process already runs with the service's flags (or they were turned off); otherwise replaces
 * it with the same command line plus the flags, and does not return. If that fails (no execv here), says so and
 * returns: the service then runs without them.
 */
export async function ensureServiceFlags(): Promise<void> {
  if (process.env[SERVICE_FLAGS_ENV] === '0') return;
  const missing = SERVICE_V8_FLAGS.filter((f) => !process.execArgv.includes(f));
  if (missing.length === 0) return;
  try {
    // loaded here, not at the top: the job spawner reads this module's flags and stays small
    const { nativeSync } = await import('../native/call.js');
    nativeSync((b) => b.replaceProcess(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)]));
  } catch (e) {
    console.error(`brainlatent serve: running without ${missing.join(' ')} (${(e as Error).message}); event-loop stalls of 20–40 ms from V8's memory reducer may follow heap growth`);
  }
}

/** Node options for a process the service starts that should not inherit the service's flags (a job's). */
export function withoutServiceFlags(execArgv: readonly string[]): string[] {
  return execArgv.filter((a) => !SERVICE_V8_FLAGS.includes(a));
}
