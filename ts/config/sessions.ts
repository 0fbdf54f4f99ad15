/**
 * `nsd.sessions`, one field for every config that reads NSD betas (reconstruct, encode): its schema, and the
 * grammar of its string form ("1-37", "1-10,12"), checked when a config is validated: what the NSD adapter's
 * parseSessions would refuse only once the run had started. Whether the sessions exist is a question for the
 * data (the preflights check it against the betas in the NSD root).
 */
import { Type } from '@sinclair/typebox';

import { Default, Nullable } from './schemaKit.js';

/**
 * The schema of `nsd.sessions`, the forms extractNsd's `sessions` takes: a spec string ("1-37", "1-10,12"), a
 * non-empty list of session numbers ([1, 2, 3]), or null (default: every session with betas among 1–37).
 */
export const NsdSessions = () =>
  Default(
    Nullable(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 })]), {
      description: 'sessions ("1-37", "1-10,12" or a list such as [1, 2, 3]); null: every session present among 1–37',
    }),
    null,
  );

/**
 * Problems of a sessions spec (a string like "1-10,12" or a list of session numbers), each naming `label`
 * (the field, e.g. "enc.json: nsd.sessions"); none for null. A list's numbers are left to the schema.
 */
export function sessionSpecProblems(spec: unknown, label: string): string[] {
  if (typeof spec !== 'string') return [];
  const problems: string[] = [];
  const parts = spec.split(',').map((s) => s.trim());
  const inSpec = parts.length > 1 ? ` (in "${spec}")` : '';
  if (parts.every((p) => p === '')) return [`${label}: "${spec}" names no session; expected numbers and ranges such as "1-37" or "1-10,12"`];
  for (const part of parts) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) {
      problems.push(`${label}: "${part}"${inSpec} is not a session number or a range like 1-37`);
      continue;
    }
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < 1) problems.push(`${label}: "${part}"${inSpec}: sessions are numbered from 1`);
    else if (b < a) problems.push(`${label}: range "${part}"${inSpec} runs backwards; a range goes from the lower session to the higher (${b}-${a})`);
  }
  return problems;
}
