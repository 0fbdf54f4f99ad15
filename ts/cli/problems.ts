/**
 * A command's checks of its flags and inputs, each kept instead of stopping the command at the first: one refusal
 * lists every problem, as the encode config's checks do. One problem is thrown as its own error (its class), several
 * make one PreflightError, a line each; either way each names its flag.
 */
import { BrainlatentError, EnvironmentError } from '../errors.js';
import { PreflightError } from '../pipeline/errors.js';

/**
 * `message` named by `flag` once: "--alphas: …" for "alphas: …" or for a library call's "ridgeCv alphas: …" (the
 * option named by its call, one word before it), as is when it starts with the flag already.
 */
function byFlag(flag: string | undefined, message: string): string {
  if (!flag || message.startsWith(flag)) return message;
  const bare = `${flag.replace(/^--/, '')}: `;
  const named = message.match(/^\S+ /)?.[0] ?? '';
  const rest = message.startsWith(bare) ? message.slice(bare.length) : message.startsWith(named + bare) ? message.slice(named.length + bare.length) : message;
  return `${flag}: ${rest}`;
}

export class FlagProblems {
  private readonly found: { error: BrainlatentError; line: string }[] = [];

  /** The check's value, or undefined when it refused (its refusal kept); errors other than refusals pass. */
  take<T>(check: () => T, flag?: string): T | undefined {
    try {
      return check();
    } catch (e) {
      this.keep(e, flag);
      return undefined;
    }
  }

  /** As `take`, for a check that reads files. */
  async takeAsync<T>(check: () => Promise<T>, flag?: string): Promise<T | undefined> {
    try {
      return await check();
    } catch (e) {
      this.keep(e, flag);
      return undefined;
    }
  }

  add(error: BrainlatentError, flag?: string): void {
    this.found.push({ error, line: byFlag(flag, error.message) });
  }

  get count(): number {
    return this.found.length;
  }

  /** Each problem's line, named by its flag (or field): what a service's 400 lists. */
  get lines(): string[] {
    return this.found.map((p) => p.line);
  }

  /**
   * Throws what was found (nothing when all is well); `what` names the command ("ridge fit"). One problem is its
   * error with the line it would have in a list ("--alphas: …", never "alphas: …" alone and "--alphas: …" with others).
   */
  throwIfAny(what: string): void {
    if (this.found.length === 1) {
      const { error, line } = this.found[0];
      error.message = line;
      throw error;
    }
    if (this.found.length > 1) throw new PreflightError(this.found.map((p) => p.line), what);
  }

  private keep(e: unknown, flag?: string): void {
    // (an environment variable's problem is the process's, whichever flag's file the check was reading)
    if (!(e instanceof BrainlatentError) || e instanceof EnvironmentError) throw e;
    this.add(e, flag);
  }
}
