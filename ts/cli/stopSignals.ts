/**
 * SIGINT (Ctrl-C) and SIGTERM (a cluster scheduler's time limit, `timeout`, `docker stop`, `kill`) stop a command's
 * work at its next step through one AbortController, so that it removes what it had begun to write and says which
 * signal stopped it (exit status 1, as every error). Without a SIGTERM handler Node ended the process at once, leaving
 * temporary files behind. The first signal removes both handlers: a second one, of either kind, ends the process at
 * once, as Node's default does. Call dispose() once the work is done, so that a signal then ends the process too.
 */
export interface StopSignals {
  /** Aborted at the first SIGINT or SIGTERM; its reason is the signal's name. */
  readonly signal: AbortSignal;
  /** The signal that stopped the work ('SIGINT' or 'SIGTERM'), or 'a signal' if none came. */
  name(): string;
  /** Removes the handlers: from here on a signal ends the process at once. */
  dispose(): void;
}

export function stopOnSignals(): StopSignals {
  const ac = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const handler = () => {
      dispose();
      ac.abort(sig);
    };
    process.once(sig, handler);
    return [sig, handler] as const;
  });
  function dispose(): void {
    for (const [sig, handler] of handlers) process.removeListener(sig, handler);
  }
  return { signal: ac.signal, name: () => (typeof ac.signal.reason === 'string' ? ac.signal.reason : 'a signal'), dispose };
}
