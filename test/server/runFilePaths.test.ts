/**
 * A run folder's text files served through the files route name files as the API does: run.json, stages/*.json
 * and cache manifests record the absolute paths the job ran with (the NSD root under the service's root, the ONNX
 * Runtime library outside it); the served copy has them root-relative, or '<server path>' for one outside the
 * root. The file on disk is unchanged; binary files are served byte for byte.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hiddenJsonPaths, hiddenPaths, SERVER_PATH } from '../../ts/server/rootPaths.js';
import { serveRunFolder } from '../helpers/servedRunFolder.js';
import type { TestServer } from './helpers.js';

const ORT = '/work/main/node_modules/onnxruntime-node/bin/napi-v3/linux/x64/libonnxruntime.so.1';

describe("a run folder's files, served", () => {
  let s: TestServer;
  let id: string;
  let runJson: string;
  const npy = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x78]);
  beforeAll(async () => {
    // a job that writes its run folder as a reconstruct job does, with the paths it ran with
    ({ s, id } = await serveRunFolder((out, root) => {
      runJson = `${JSON.stringify({ config: { nsd: { root: `${root}/world/nsd` }, model: { dir: `${root}/world/model`, ortLibrary: ORT }, out, note: `read ${root}/world/nsd/x.hdf5 and ${ORT}`, units: 'it/s', url: 'https://example.org/a/b', rootItself: root } }, null, 2)}\n`;
      mkdirSync(join(out, 'stages'), { recursive: true });
      writeFileSync(join(out, 'run.json'), runJson);
      writeFileSync(join(out, 'stages', 'extract.json'), JSON.stringify({ inputs: [`${root}/world/nsd/betas.hdf5`, '/etc/passwd'] }));
      writeFileSync(join(out, 'stages', 'features.json'), JSON.stringify({ log: `read\n${root}/world/nsd/x.hdf5\n/opt/models/x/unet.onnx` }));
      writeFileSync(join(out, 'log.txt'), `loaded ${ORT}\n`);
      writeFileSync(join(out, 'x.npy'), npy);
    }));
  });
  afterAll(async () => s?.stop());

  // (before, each was served as written: the root's absolute path and /work/main/node_modules/… reached the client)
  it('run.json: paths under the root are root-relative, others hidden; the file on disk is unchanged', async () => {
    const r = await fetch(`${s.url}/v1/jobs/${id}/files/run.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const text = await r.text();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(text).not.toContain(s.root);
    expect(text).not.toContain('/work/main');
    expect(JSON.parse(text)).toEqual({
      config: {
        nsd: { root: 'world/nsd' },
        model: { dir: 'world/model', ortLibrary: SERVER_PATH },
        out: 'run1',
        note: `read world/nsd/x.hdf5 and ${SERVER_PATH}`,
        units: 'it/s',
        url: 'https://example.org/a/b',
        rootItself: '.',
      },
    });
    expect(readFileSync(join(s.root, 'run1', 'run.json'), 'utf8')).toBe(runJson);
  });

  it('stages/*.json and .txt too; binary files byte for byte', async () => {
    const stage = await (await fetch(`${s.url}/v1/jobs/${id}/files/stages/extract.json`)).json();
    expect(stage).toEqual({ inputs: ['world/nsd/betas.hdf5', SERVER_PATH] });
    // (a path after an escaped newline: before, served as written)
    expect(await (await fetch(`${s.url}/v1/jobs/${id}/files/stages/features.json`)).json()).toEqual({ log: `read\nworld/nsd/x.hdf5\n${SERVER_PATH}` });
    expect(await (await fetch(`${s.url}/v1/jobs/${id}/files/log.txt`)).text()).toBe(`loaded ${SERVER_PATH}\n`);
    const bin = Buffer.from(await (await fetch(`${s.url}/v1/jobs/${id}/files/x.npy`)).arrayBuffer());
    expect(bin.equals(npy)).toBe(true);
  });

  // (before, a path after a JSON escape was left as it was: the 'n' of '\n' reads as a name going on)
  it("hides a path after a JSON string's escape: in a .json file's decoded values, and after '\\n', '\\t', '\\r' in text", () => {
    const S = SERVER_PATH;
    const json = JSON.stringify({ m: 'a\n/srv/root/runs/a\n/opt/models/x/unet.onnx', n: 1.0, t: ['\t/opt/y/z', '\/opt\/q/r'], k: { '/opt/key/k': 2 } });
    expect(hiddenJsonPaths('{"m":"a\\n/srv/root/runs/a\\n/opt/models/x/unet.onnx"}', ['/srv/root'])).toBe(`{"m":"a\\nruns/a\\n${S}"}`);
    expect(JSON.parse(hiddenJsonPaths(json, ['/srv/root']))).toEqual({ m: `a\nruns/a\n${S}`, n: 1, t: [`\t${S}`, S], k: { [S]: 2 } });
    // a JSON escape written with '\/' (a legal escape of '/') is decoded too; the layout and numbers stay as they were
    expect(hiddenJsonPaths('{\n  "p": "\\/opt\\/x\\/y",\n  "v": 1.50\n}', [])).toBe(`{\n  "p": "${S}",\n  "v": 1.50\n}`);
    // in text (a .txt or .csv holding JSON, or a .json that does not parse)
    expect(hiddenPaths('a\\n/srv/root/runs/a\\t/opt/models/x/unet.onnx\\r/opt/y/z', ['/srv/root'])).toBe(`a\\nruns/a\\t${S}\\r${S}`);
  });

  it('hiddenPaths leaves markup, relative paths, URLs and fractions alone', () => {
    expect(hiddenPaths('<p>a/b 1/2 it/s https://x.org/a/b</p> //c "/"', ['/data'])).toBe('<p>a/b 1/2 it/s https://x.org/a/b</p> //c "/"');
    expect(hiddenPaths('"/data/runs/s1" "/data" "/opt/x/y" (/usr/lib/z)', ['/data'])).toBe(`"runs/s1" "." "${SERVER_PATH}" (${SERVER_PATH})`);
  });

  // (before, a path after '&quot;', '&#39;', a backtick, '|', '>' or ';' was left as it was: only "'\s(=,[{: were known)
  it('hiddenPaths hides a path after an escaped quote, a backtick, a pipe, a tag or a semicolon, and ends it before an entity', () => {
    const S = SERVER_PATH;
    expect(hiddenPaths('&quot;/opt/x/y&quot; &#39;/opt/x/y&#39; `/opt/x/y` a|/opt/x/y <b>/opt/x/y</b> a;/opt/x/y', ['/data'])).toBe(
      `&quot;${S}&quot; &#39;${S}&#39; \`${S}\` a|${S} <b>${S}</b> a;${S}`,
    );
    expect(hiddenPaths('&quot;/data/runs/x&quot; PATH=/usr/bin:/opt/x/y file:///etc/passwd', ['/data'])).toBe(`&quot;runs/x&quot; PATH=${S}:${S} file://${S}`);
    // URLs, relative paths and names with a slash are not absolute paths
    const kept = 'http://[::1]/a/b http://h:8080/a/b https://x.org/a/b ./a/b ../a/b ~/a/b ${d}/a/b @/a/b #/a/b é/a/b a-/b/c file://host/a/b </div> <br/> 10 MB/s 1/2/3';
    expect(hiddenPaths(kept, ['/data'])).toBe(kept);
  });
});
