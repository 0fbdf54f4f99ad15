/** Runs CLI commands in this process, as `brainlatent …` would, and returns what they printed with console.log. */
import { Command } from 'commander';
import { vi } from 'vitest';

export async function runCommands(register: ((program: Command) => void)[], args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  for (const r of register) r(program);
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    await program.parseAsync(['node', 'brainlatent', ...args]);
  } finally {
    log.mockRestore();
  }
  return lines.join('\n');
}

/** What `run` wrote on stderr (console.log silenced meanwhile). */
export async function stderrOf(run: () => Promise<unknown>): Promise<string> {
  let text = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((text += String(s)), true));
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await run();
  } finally {
    spy.mockRestore();
    log.mockRestore();
  }
  return text;
}
