/**
 * Content negotiation: which of the media types a route can answer a request's Accept header prefers, by its
 * q-values (RFC 9110 §12.5.1): `application/x-npy;q=0.5, application/json;q=0.9` prefers JSON. A more specific
 * range decides a type's q (`application/json` over `application/*` over any type); among equal q-values the route's
 * own order decides. No Accept header (or one that accepts none of them) gets the route's first type.
 */

interface Range {
  type: string;
  subtype: string;
  q: number;
}

function ranges(header: string): Range[] {
  const out: Range[] = [];
  for (const part of header.split(',')) {
    const [media, ...params] = part.split(';').map((p) => p.trim());
    const [type, subtype] = media.toLowerCase().split('/');
    if (!type || !subtype) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=').map((x) => x.trim());
      if (k.toLowerCase() === 'q') q = Number.isFinite(Number(v)) ? Math.min(1, Math.max(0, Number(v))) : 0;
    }
    out.push({ type, subtype, q });
  }
  return out;
}

/** The q-value the header gives `offered` (from its most specific matching range), or -1 when none matches. */
function qualityOf(offered: string, accepted: Range[]): number {
  const [type, subtype] = offered.toLowerCase().split('/');
  let best = -1;
  let specificity = -1;
  for (const r of accepted) {
    const s = r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' && r.subtype === '*' ? 0 : -1;
    if (s > specificity) {
      specificity = s;
      best = r.q;
    }
  }
  return best;
}

/** The type of `offered` (in the route's order of preference) the Accept `header` prefers. */
export function preferredType(header: string | undefined, offered: readonly string[]): string {
  if (!header?.trim()) return offered[0];
  const accepted = ranges(header);
  let choice = offered[0];
  let bestQ = 0;
  for (const type of offered) {
    const q = qualityOf(type, accepted);
    if (q > bestQ) {
      bestQ = q;
      choice = type;
    }
  }
  return choice;
}
