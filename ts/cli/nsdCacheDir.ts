import { homedir } from 'node:os';
import { join } from 'node:path';

/** Default cache folder: $BRAINLATENT_CACHE, else $XDG_CACHE_HOME/brainlatent/nsd, else ~/.cache/brainlatent/nsd. */
export function defaultNsdCacheDir(): string {
  if (process.env.BRAINLATENT_CACHE) return join(process.env.BRAINLATENT_CACHE, 'nsd');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'brainlatent', 'nsd');
}
