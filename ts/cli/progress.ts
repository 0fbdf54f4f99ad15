/** Progress on stderr: a redrawn bar on a terminal, a line every few seconds otherwise (logs, CI). */
export interface ProgressBar {
  update(fraction: number, stage?: string): void;
  done(message?: string): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const tty = stream.isTTY === true;
  const t0 = Date.now();
  let lastLine = 0;
  let lastPct = -1;
  return {
    update(fraction, stage) {
      const pct = Math.floor(Math.max(0, Math.min(1, fraction)) * 100);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      if (tty) {
        if (pct === lastPct) return;
        const width = 30;
        const fill = Math.round((pct / 100) * width);
        stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}% ${stage ?? ''} ${secs}s   `);
      } else if (Date.now() - lastLine > 2000 || pct === 100) {
        if (pct === lastPct) return;
        stream.write(`${label}: ${pct}% ${stage ?? ''} (${secs}s)\n`);
        lastLine = Date.now();
      }
      lastPct = pct;
    },
    done(message) {
      if (tty) stream.write('\r\x1b[K');
      if (message) stream.write(`${message}\n`);
    },
  };
}
