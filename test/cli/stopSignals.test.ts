/** The CLI's SIGINT/SIGTERM handling (ts/cli/stopSignals.ts): the first signal aborts, and leaves the next to Node. */
import { describe, expect, it } from 'vitest';

import { stopOnSignals } from '../../ts/cli/stopSignals.js';

describe('stopOnSignals', () => {
  it('the first signal, of either kind, aborts with its name and removes both handlers: a second one ends the process', () => {
    const count = () => [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
    const before = count();
    const stop = stopOnSignals();
    expect(count()).toEqual([before[0] + 1, before[1] + 1]);
    // (emitted, not sent: a real second signal with no handler would end this test's process)
    process.emit('SIGTERM', 'SIGTERM');
    expect([stop.signal.aborted, stop.name()]).toEqual([true, 'SIGTERM']);
    expect(count()).toEqual(before);
    // dispose after the work: nothing left installed either way
    const other = stopOnSignals();
    other.dispose();
    expect([count(), other.signal.aborted, other.name()]).toEqual([before, false, 'a signal']);
  });
});
