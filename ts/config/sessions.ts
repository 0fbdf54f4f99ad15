/**
 * `nsd.sessions`, one field for every config that reads NSD betas (reconstruct, encode): its schema; and the grammar
 * of a sessions spec ("1-37", "1-10,12"): one parser, so `nsd extract --sessions`, extractNsd's `sessions` and a
 * config's `nsd.sessions` (checked when the config is validated, before the run starts) accept the same specs and
 * refuse the rest in the same words. Whether the sessions exist is a question for the data (the preflights check it
 * against the betas in the NSD root).
 */
import { Type } from './typeBuilder.js';

import { Default, Nullable } from './schemaKit.js';

/**
 * The largest session number a spec may name: NSD's run to 40 (betas_session40), synthetic worlds a little further.
 * Bounded because a range is expanded session by session: "1-1000000" took 5 GB before the data was looked at.
 */
export const MAX_SESSION = 999;

/**
 * The schema of `nsd.sessions`, the forms extractNsd's `sessions` takes: a spec string ("1-37", "1-10,12"), a
 * non-empty list of session numbers ([1, 2, 3]), or null (default: every session with betas among 1–37).
 */
export const NsdSessions = () =>
  Default(
    Nullable(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.Integer({ minimum: 1, maximum: MAX_SESSION }), { minItems: 1 })]), {
      description: 'sessions ("1-37", "1-10,12" or a list such as [1, 2, 3]); null: every session present among 1–37',
    }),
    null,
  );

/**
 * The sessions a spec names (sorted, unique) and its problems, each a phrase to follow its label ("range "3-1" runs
 * backwards; …"): a part that is no number or range, a session below 1, a range from high to low, a spec naming none.
 */
export function parseSessionSpec(spec: string): { sessions: number[]; problems: string[] } {
  const problems: string[] = [];
  const sessions = new Set<number>();
  const parts = spec.split(',').map((s) => s.trim());
  const inSpec = parts.length > 1 ? ` (in "${spec}")` : '';
  if (parts.every((p) => p === '')) return { sessions: [], problems: [`"${spec}" names no session; expected numbers and ranges such as "1-37" or "1-10,12"`] };
  for (const part of parts) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) {
      problems.push(`"${part}"${inSpec} is not a session number or a range like 1-37`);
      continue;
    }
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < 1) problems.push(`"${part}"${inSpec}: sessions are numbered from 1`);
    else if (a > MAX_SESSION || b > MAX_SESSION) problems.push(`"${part}"${inSpec}: sessions are numbered up to ${MAX_SESSION} (NSD's run to 40)`);
    else if (b < a) problems.push(`range "${part}"${inSpec} runs backwards; a range goes from the lower session to the higher (${b}-${a})`);
    else for (let s = a; s <= b; s++) sessions.add(s);
  }
  return { sessions: [...sessions].sort((x, y) => x - y), problems };
}

/**
 * Problems of a sessions spec (a string like "1-10,12" or a list of session numbers), each naming `label`
 * (the field, e.g. "enc.json: nsd.sessions"); none for null. A list's numbers are left to the schema.
 */
export function sessionSpecProblems(spec: unknown, label: string): string[] {
  if (typeof spec !== 'string') return [];
  return parseSessionSpec(spec).problems.map((p) => `${label}: ${p}`);
}
