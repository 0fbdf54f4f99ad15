/**
 * A run folder's records of what computed each stage name the machine (`hostname`: run.json's `versions` and
 * `stageVersions`, a stage marker's `ranWith` and `ranWithParts`, a shared entry's entry.json). The files route
 * serves them with each host's name replaced by '<server host>', as it replaces server paths (the ONNX Runtime
 * library's among them), the rest of each record as it was; the files on disk are unchanged.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { stageVersions } from '../../ts/pipeline/runVersions.js';
import { summarizeVersions } from '../../ts/pipeline/stageVersions.js';
import { hiddenJsonPaths, SERVER_HOST, SERVER_PATH } from '../../ts/server/rootPaths.js';
import { serveRunFolder } from '../helpers/servedRunFolder.js';
import type { TestServer } from './helpers.js';

const ORT = '/opt/onnxruntime-1.20/lib/libonnxruntime.so.1.20.0';
// another worker's machine, as a batch's stage computed elsewhere records it
const OTHER = 'gpu-node-07.cluster.internal';

// the records as the jobs write them (runVersions.ts), this host's and another worker's
const here = stageVersions([{ via: 'engine', version: '1.20.0', library: ORT }]);
const there = { ...stageVersions([]), hostname: OTHER };
const hidden = (r: Record<string, string>) => ({ ...r, hostname: SERVER_HOST, ...(r.onnxruntimeLibrary ? { onnxruntimeLibrary: SERVER_PATH } : {}) });

describe("a run folder's records of what computed it, served", () => {
  let s: TestServer;
  let id: string;
  let runJson: string;
  let marker: string;
  const stageSummary = summarizeVersions([['extract', there], ['features', here]]);
  beforeAll(async () => {
    ({ s, id } = await serveRunFolder((out) => {
      mkdirSync(join(out, 'stages'), { recursive: true });
      runJson = `${JSON.stringify({ versions: { ...here, runner: 'brainlatent batch' }, stageVersions: stageSummary, note: 'x' }, null, 2)}\n`;
      marker = JSON.stringify({ stage: 'img2img', seconds: 2, ranWithParts: { 'k0-0.i0-3': here, 'k0-0.i4-7': there, 'k1-0.i0-3': null } });
      writeFileSync(join(out, 'run.json'), runJson);
      writeFileSync(join(out, 'stages', 'features.json'), JSON.stringify({ stage: 'features', ranWith: here, summary: { host: 'kept', hostnames: ['kept'] } }));
      writeFileSync(join(out, 'stages', 'img2img.json'), marker);
    }));
  });
  afterAll(async () => s?.stop());

  const served = async (rel: string): Promise<string> => {
    const r = await fetch(`${s.url}/v1/jobs/${id}/files/${rel}`);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    return text;
  };

  // (before, each record's hostname reached the client: this server's and the other worker's)
  it('run.json: versions and stageVersions name no host, the rest as recorded; the file on disk is unchanged', async () => {
    expect(here.hostname).toBe(hostname());
    expect(stageSummary.stages).toEqual({ extract: expect.objectContaining({ hostname: OTHER }), features: expect.objectContaining({ hostname: hostname() }) });
    const text = await served('run.json');
    expect(text).not.toContain(JSON.stringify(hostname()));
    expect(text).not.toContain(OTHER);
    expect(text).not.toContain(ORT);
    const { stages } = stageSummary;
    expect(JSON.parse(text)).toEqual({
      versions: { ...hidden(here), runner: 'brainlatent batch' },
      stageVersions: { same: stageSummary.same, stages: { extract: hidden(stages.extract), features: hidden(stages.features) } },
      note: 'x',
    });
    // the layout is kept: only the values changed
    expect(text.split('\n').length).toBe(runJson.split('\n').length);
    expect(readFileSync(join(s.root, 'run1', 'run.json'), 'utf8')).toBe(runJson);
  });

  it("a stage marker's ranWith and each part's record in ranWithParts name no host; other keys are kept", async () => {
    const features = await served('stages/features.json');
    expect(features).not.toContain(JSON.stringify(hostname()));
    expect(JSON.parse(features)).toEqual({ stage: 'features', ranWith: hidden(here), summary: { host: 'kept', hostnames: ['kept'] } });
    const img2img = await served('stages/img2img.json');
    expect(img2img).not.toContain(OTHER);
    expect(JSON.parse(img2img)).toEqual({ stage: 'img2img', seconds: 2, ranWithParts: { 'k0-0.i0-3': hidden(here), 'k0-0.i4-7': hidden(there), 'k1-0.i0-3': null } });
    expect(readFileSync(join(s.root, 'run1', 'stages', 'img2img.json'), 'utf8')).toBe(marker);
  });

  it('hiddenInJson finds the key however it is written and spaced, and only as a key', () => {
    const S = JSON.stringify(SERVER_HOST);
    expect(hiddenJsonPaths('{"a": {"host\\u006eame" :\n "h1"}, "b": ["hostname", "h2"], "hostname": 3}', [])).toBe(`{"a": {"host\\u006eame" :\n ${S}}, "b": ["hostname", "h2"], "hostname": 3}`);
  });
});
