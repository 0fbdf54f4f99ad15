/**
 * Which tokens the service refuses at start: one a guesser finds in reach. Wrong tokens are slowed (guessLimit.ts),
 * but the token is the only key, and before the slowing POST /v1/session took ~3,200 wrong tokens a second: a word, a
 * short code or one key held down is found quickly. A token must have at least MIN_TOKEN_LENGTH characters and more
 * than one distinct character, all of them visible ASCII (what a bearer header carries: it is trimmed, and other
 * characters are refused or mangled by clients); the check never quotes the token (an error message may be logged).
 */

/** The fewest characters a token may have (16 random hex digits are 64 bits). */
export const MIN_TOKEN_LENGTH = 16;

/** How the docs and messages say to make one. */
export const MAKE_TOKEN = 'openssl rand -hex 32';

/** What is wrong with `token` (e.g. 'it has 6 characters; at least 16 are needed'), or undefined when it will do. */
export function weakToken(token: string): string | undefined {
  const chars = [...token];
  if (chars.length < MIN_TOKEN_LENGTH) return `it has ${chars.length} character${chars.length === 1 ? '' : 's'}; at least ${MIN_TOKEN_LENGTH} are needed`;
  if (new Set(chars).size === 1) return `it is one character repeated ${chars.length} times`;
  // (a bearer header is trimmed, and its value is visible ASCII: such a token could never be sent, or never match)
  const odd = chars.findIndex((c) => !/^[\x21-\x7e]$/.test(c));
  if (odd >= 0) return `character ${odd + 1} is ${/\s/.test(chars[odd]!) ? 'white space' : 'outside visible ASCII'}, which an Authorization header cannot carry as is: use visible ASCII only`;
  return undefined;
}

/** The refusal of a weak token given as `source` (`--token`, `$BRAINLATENT_TOKEN`, `brainlatentPlugin options.token`). */
export function weakTokenMessage(source: string, problem: string, example: string): string {
  return `${source}: the token is too easy to guess (${problem}): use a long random one, e.g. ${example}`;
}
