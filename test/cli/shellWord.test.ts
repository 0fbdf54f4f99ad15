/**
 * shellWord: the demo's last line, `open <out>/run/report.html`, split into two words in a folder whose name has a
 * space (reviewer R2 ran it in 'my proj ü 脑'). Each word is checked by the shell itself: sh reads it back as the one
 * argument it stands for.
 */
import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { shellWord } from '../../ts/cli/format.js';

/** What sh makes of `printf '%s\n' <word>`, one line per argument. */
const shellReads = (word: string) => execFileSync('sh', ['-c', `printf '%s\\n' ${word}`], { encoding: 'utf8' }).split('\n').slice(0, -1);

describe('shellWord', () => {
  it('leaves a plain path bare and quotes one with a space, double quotes first', () => {
    expect(shellWord('/tmp/brainlatent-demo/run/report.html')).toBe('/tmp/brainlatent-demo/run/report.html');
    expect(shellWord('/tmp/my proj ü 脑/run/report.html')).toBe('"/tmp/my proj ü 脑/run/report.html"');
    expect(shellWord("/tmp/it's $HOME/a")).toBe(`'/tmp/it'\\''s $HOME/a'`);
  });

  it('is read back by sh as the one argument it stands for', () => {
    for (const p of ['/tmp/a/report.html', '/tmp/my proj ü 脑/report.html', '/tmp/$HOME `x` "q"/r.html', "/tmp/it's/r.html", '/tmp/a\\b!/r.html', '/tmp/*?[x]/r.html']) {
      expect(shellReads(shellWord(p)), p).toEqual([p]);
    }
  });
});
