/**
 * A batch's time limit per job (`--job-timeout`): how it is written, checked and shown. The limit is the batch's,
 * given when it is submitted, as Slurm's `sbatch --time` is the job's: the one who submits knows how long the work
 * should take, and every worker, whatever machine it runs on, holds each job to it (a worker's own allocation limit is
 * another matter: --grace). Written in Slurm's forms (`MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`) or with
 * units (`90s`, `45m`, `2h`, `1h30m`, `1d`). A bare number is refused: Slurm reads it as minutes, most tools as seconds.
 */
import { InvalidArgumentError } from '../errors.js';
import { checkIntegerAt, MAX_TIMER_MS } from '../ridge/options.js';

/** The shortest limit: a job process takes about a second to start and load its modules. */
export const MIN_JOB_TIMEOUT_MS = 1000;
/** The longest: setTimeout's range (about 24.8 days). */
export const MAX_JOB_TIMEOUT_MS = MAX_TIMER_MS;

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const FORMS = "Slurm's MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, or units such as 90s, 45m, 2h, 1h30m, 1d";

/** Slurm's time forms (sbatch --time), less its bare minutes: ms, or undefined when `t` is not one of them. */
function slurmMs(t: string): number | undefined {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (!m || (m[1] === undefined && m[3] === undefined)) return undefined;
  const [days, a, b, c] = [m[1], m[2], m[3], m[4]].map((x) => (x === undefined ? undefined : Number(x)));
  // D-HH[:MM[:SS]] with a day; without one, MM:SS (any minutes) or HH:MM:SS
  const [h, min, s] = days !== undefined ? [a!, b ?? 0, c ?? 0] : c !== undefined ? [a!, b!, c] : [0, a!, b!];
  const hours = days !== undefined || c !== undefined;
  if ((hours && min > 59) || s > 59) return undefined;
  return (((days ?? 0) * 24 + h) * 60 + min) * 60_000 + s * 1000;
}

/** `1h30m`, `90s`, `1500ms`: ms, or undefined when `t` is not a run of number-unit pairs. */
function unitsMs(t: string): number | undefined {
  if (!/^(?:\d+(?:ms|d|h|m|s))+$/.test(t)) return undefined;
  let ms = 0;
  for (const [, n, u] of t.matchAll(/(\d+)(ms|d|h|m|s)/g)) ms += Number(n) * UNIT_MS[u];
  return ms;
}

/** A limit as written (`--job-timeout 2h`), in ms; an InvalidArgumentError naming `flag` and the forms it takes. */
export function parseJobTimeout(text: string, flag: string): number {
  const t = text.trim();
  const ms = slurmMs(t) ?? unitsMs(t);
  if (ms === undefined) {
    const bare = /^\d+$/.test(t) ? ` (a bare number has no unit: ${t}m, or ${t}s?)` : '';
    throw new InvalidArgumentError(`${flag}: expected a duration (${FORMS}), got '${text}'${bare}`);
  }
  if (ms < MIN_JOB_TIMEOUT_MS || ms > MAX_JOB_TIMEOUT_MS) {
    throw new InvalidArgumentError(`${flag}: expected a duration from 1s to 24d20h31m23s (setTimeout's range), got '${text}'`);
  }
  return ms;
}

/** A limit given in ms to the library (`jobTimeoutMs`): a whole number of ms in range, else an error naming it. */
export function checkJobTimeoutMs(value: unknown, what: string): number {
  return checkIntegerAt(value, `${what} jobTimeoutMs`, MIN_JOB_TIMEOUT_MS, MAX_JOB_TIMEOUT_MS);
}

/** A limit in words, in units: `2h`, `1h30m`, `1.5s`. */
export function formatJobTimeout(ms: number): string {
  let left = Math.max(0, Math.round(ms));
  let out = '';
  for (const u of ['d', 'h', 'm'] as const) {
    const n = Math.floor(left / UNIT_MS[u]);
    if (n) out += `${n}${u}`;
    left -= n * UNIT_MS[u];
  }
  if (left || !out) out += `${left / 1000}s`;
  return out;
}
