/**
 * hiddenButRoutes (ts/server/answerPaths.ts): an error answer keeps the service's routes it names, and a server path
 * holding a '/v1/' segment is still a path — root-relative under the root, `<server path>` outside it (reviewer R1b:
 * a root /…/data/v1/root answered '<server path>/v1/root/m', and /opt/models/v1/unet/w.bin leaked its tail).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, expect, it } from 'vitest';

import { hiddenButRoutes } from '../../ts/server/answerPaths.js';
import { RootFolder } from '../../ts/server/rootPaths.js';

const base = realpathSync(mkdtempSync(join(tmpdir(), 'bl-answer-paths-')));
afterAll(() => rmSync(base, { recursive: true, force: true }));

it("keeps routes, and a server path with a '/v1/' segment is rewritten whole", () => {
  const rootPath = join(base, 'data', 'v1', 'root');
  mkdirSync(join(rootPath, 'm'), { recursive: true });
  const root = new RootFolder(rootPath);
  const shown = (text: string) => hiddenButRoutes(text, (t) => root.hidden(t));
  expect(shown(`body.path: model folder ${rootPath}/m has no unet/model.onnx`)).toBe('body.path: model folder m has no unet/model.onnx');
  expect(shown("tensor 'w' keeps its data in '/opt/models/v1/unet/w.bin', an absolute path")).toBe(
    "tensor 'w' keeps its data in '<server path>', an absolute path",
  );
  expect(shown('use POST /v1/ridge/NAME/predict; the limit of POST /v1/jobs is 1 MiB')).toBe('use POST /v1/ridge/NAME/predict; the limit of POST /v1/jobs is 1 MiB');
  expect(shown('Route GET:/v1/nothing not found')).toBe('Route GET:/v1/nothing not found');
});
