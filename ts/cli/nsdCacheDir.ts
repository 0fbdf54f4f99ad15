import { homedir } from 'node:os';
import { join } from 'node:path';

/** Default cache folder: $BRAINLATENT_CACHE, else $XDG_CACHE_HOME/brainlatent/nsd, else ~/.cache/brainlatent/nsd. */
export function defaultNsdCacheDir(): string {
  if (process.env.BRAINLATENT_CACHE) return join(process.env.BRAINLATENT_CACHE, 'nsd');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'brainlatent', 'nsd');
}

/**
 * How a refusal names the cache folder when --cache was not given: where the default came from and, for the one
 * under HOME (another user's home, when run under sudo -u or a service account), how to choose another.
 */
export function defaultNsdCacheLabel(): string {
  if (process.env.BRAINLATENT_CACHE) return '--cache (default from BRAINLATENT_CACHE)';
  if (process.env.XDG_CACHE_HOME) return '--cache (default from XDG_CACHE_HOME)';
  return '--cache (default, under HOME; set --cache, XDG_CACHE_HOME or BRAINLATENT_CACHE to choose another folder)';
}
