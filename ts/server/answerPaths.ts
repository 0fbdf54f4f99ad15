/**
 * What an error answer or a job's error shows of paths: like a served run file (RootFolder.hidden), the server's paths
 * under the root made root-relative and any other absolute path (an ONNX external data location, a system error's
 * file) replaced by `<server path>`; but the service's own routes that a message names ('use POST
 * /v1/ridge/NAME/predict', 'the limit of POST /v1/jobs') are not server paths and stay as they are.
 */
import { PATH_START } from './rootPaths.js';

// (only where a path can start: '/v1/' inside a server path, /srv/data/v1/root/m, is part of that path, not a route)
const ROUTE = new RegExp(`(${PATH_START}\\/v1\\/[^\\s'"\`,;()]*)`, 'u');

/** `text` with `hide` applied to everything but the routes in it. */
export function hiddenButRoutes(text: string, hide: (text: string) => string): string {
  if (!text.includes('/')) return text;
  // (split with a capturing group: the routes are at the odd places)
  return text
    .split(ROUTE)
    .map((part, i) => (i % 2 === 1 ? part : hide(part)))
    .join('');
}
