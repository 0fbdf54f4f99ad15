import { homedir, tmpdir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * A cache variable's folder when it is an absolute path; a relative one (or an empty one) is ignored, as the XDG
 * base-directory spec says of its own: `HOME=` or `XDG_CACHE_HOME=relxdg` put the cache in whatever folder the
 * command ran from, and a run from another folder missed it (review s44).
 */
function absoluteVar(name: 'BRAINLATENT_CACHE' | 'XDG_CACHE_HOME'): string | undefined {
  const v = process.env[name];
  return v && isAbsolute(v) ? v : undefined;
}

/** The user's home: HOME when absolute, else the password database's, else none. */
function home(): string | undefined {
  const h = homedir();
  if (h && isAbsolute(h)) return h;
  try {
    const u = userInfo().homedir;
    return u && isAbsolute(u) ? u : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Default cache folder: $BRAINLATENT_CACHE/nsd, else $XDG_CACHE_HOME/brainlatent/nsd, else ~/.cache/brainlatent/nsd
 * (each variable only when an absolute path), else brainlatent-cache/nsd in the temporary folder.
 */
export function defaultNsdCacheDir(): string {
  const own = absoluteVar('BRAINLATENT_CACHE');
  if (own) return join(own, 'nsd');
  const xdg = absoluteVar('XDG_CACHE_HOME');
  if (xdg) return join(xdg, 'brainlatent', 'nsd');
  const h = home();
  return join(h ? join(h, '.cache') : join(tmpdir(), 'brainlatent-cache'), 'brainlatent', 'nsd');
}

/**
 * How a refusal names the cache folder when --cache was not given: where the default came from and, for the one
 * under HOME (another user's home, when run under sudo -u or a service account), how to choose another.
 */
export function defaultNsdCacheLabel(): string {
  if (absoluteVar('BRAINLATENT_CACHE')) return '--cache (default from BRAINLATENT_CACHE)';
  if (absoluteVar('XDG_CACHE_HOME')) return '--cache (default from XDG_CACHE_HOME)';
  return '--cache (default, under HOME; set --cache, XDG_CACHE_HOME or BRAINLATENT_CACHE to choose another folder)';
}
