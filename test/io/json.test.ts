import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, LimitError, MissingFileError } from '../../ts/errors.js';
import { numbersBeyondFloat64, readJsonFile, readJsonObject } from '../../ts/io/json.js';
import { commandOutput } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('JSON files', () => {
  it('a syntax error names the file, line and column', async () => {
    const p = file('bad.json', '{\n  "nsd": {\n    "subject": 1,\n  }\n}\n');
    const err = await readJsonFile(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toBe(`${p}:4:3: not valid JSON: property name expected`);
    const cut = file('cut.json', '{"a": [1, 2');
    await expect(readJsonFile(cut)).rejects.toThrow(new RegExp(`^${cut}:1:12: not valid JSON: .* at the end of the file$`));
    await expect(readJsonFile(file('empty.json', ''))).rejects.toThrow(/empty\.json:1:1: not valid JSON/);
  });

  it('a missing file is a MissingFileError naming it; a byte-order mark is allowed', async () => {
    await expect(readJsonFile(join(dir, 'nope.json'))).rejects.toThrow(MissingFileError);
    await expect(readJsonFile(join(dir, 'nope.json'))).rejects.toThrow(`${join(dir, 'nope.json')}: file not found`);
    expect(await readJsonFile(file('bom.json', '\ufeff{"a": 1}'))).toEqual({ a: 1 });
  });

  // (a file without end, such as /dev/zero, was read until Node's 'Invalid string length', naming no file)
  it('reads a pipe to its end, and a file without end only up to the limit', async () => {
    const before = process.env.BRAINLATENT_MAX_JSON_BYTES;
    process.env.BRAINLATENT_MAX_JSON_BYTES = String(1 << 20);
    try {
      const zero = (await readJsonFile('/dev/zero').catch((e: unknown) => e)) as Error;
      expect(zero).toBeInstanceOf(LimitError);
      expect(zero.message).toBe('/dev/zero: not a regular file, and it holds more than the 1048576-byte limit for JSON files (raise it with BRAINLATENT_MAX_JSON_BYTES)');
      const big = file('big.json', JSON.stringify({ a: 'x'.repeat(1 << 20) }));
      await expect(readJsonFile(big)).rejects.toThrow(`${big}: 1048584 bytes is more than the 1048576-byte limit for JSON files (raise it with BRAINLATENT_MAX_JSON_BYTES)`);
    } finally {
      if (before === undefined) delete process.env.BRAINLATENT_MAX_JSON_BYTES;
      else process.env.BRAINLATENT_MAX_JSON_BYTES = before;
    }
    // (--config <(jq …) is a pipe: it has no size, and is read as it comes)
    const fifo = join(dir, 'fifo.json');
    await commandOutput('mkfifo', [fifo]);
    const reading = readJsonFile(fifo);
    createWriteStream(fifo).end('{"piped": true}');
    expect(await reading).toEqual({ piped: true });
    mkdirSync(join(dir, 'folder.json'));
    await expect(readJsonFile(join(dir, 'folder.json'))).rejects.toThrow(`${join(dir, 'folder.json')}: is a directory, expected a file`);
  });

  it('readJsonObject refuses null, arrays and scalars, naming the file', async () => {
    const p = file('null.json', 'null');
    await expect(readJsonObject(p, 'a reconstruct config (an object)')).rejects.toThrow(`${p}: expected a reconstruct config (an object), found null`);
    await expect(readJsonObject(file('arr.json', '[1]'))).rejects.toThrow(/found an array/);
    expect(await readJsonObject(file('ok.json', '{"x": 2}'))).toEqual({ x: 2 });
  });
});

describe('numbersBeyondFloat64', () => {
  const of = (text: string, max?: number) => numbersBeyondFloat64(text, JSON.parse(text), max);

  it('names each number JSON.parse made ±Infinity by its path and as written, and nothing else', () => {
    const text = '{"a": {"b c": [1, 1e999, "1e999", 1e-999, 1.7e308]}, "d": -2E+308, "e": [[0], [1' + '0'.repeat(309) + ']]}';
    expect(of(text)).toEqual({
      found: [
        { path: ['a', 'b c', 1], text: '1e999', offset: text.indexOf('1e999') },
        { path: ['d'], text: '-2E+308', offset: text.indexOf('-2E+308') },
        { path: ['e', 1, 0], text: `1${'0'.repeat(309)}`, offset: text.indexOf('1000') },
      ],
      count: 3,
    });
    expect(of('1e999')).toEqual({ found: [{ path: [], text: '1e999', offset: 0 }], count: 1 });
    expect(of('{"x": [[1e308, -1e-400, "Infinity"]]}')).toEqual({ found: [], count: 0 });
    expect(of('[1e999, 1e999, 1e999]', 2)).toEqual({ found: [{ path: [0], text: '1e999', offset: 1 }, { path: [1], text: '1e999', offset: 8 }], count: 3 });
  });

  it('a JSON file with such a number is refused naming the file, line, column, field and the number as written', async () => {
    // (a config's 1e999 reached its checks as Infinity: "expected a positive number, got Infinity")
    const dir = tempDir('bl-json-beyond-');
    const p = join(dir, 'run.json');
    writeFileSync(p, '{\n  "ridge": {"alphas": [1, 1e999]},\n  "x": -1e400\n}\n');
    await expect(readJsonFile(p)).rejects.toThrow(
      `${p}:2:27: ridge.alphas[1]: 1e999 is beyond float64's range (±1.8e308) (and 1 more such number); finite numbers are required`,
    );
    writeFileSync(p, '1e999');
    await expect(readJsonFile(p)).rejects.toThrow(`${p}:1:1: 1e999 is beyond float64's range`);
    // nested past jsonc-parser's stack (it recursed into a RangeError): said without a place
    writeFileSync(p, `${'['.repeat(20_000)}1e999${']'.repeat(20_000)}`);
    await expect(readJsonFile(p)).rejects.toThrow(`${p}: holds a number beyond float64's range (such as 1e999), nested too deeply to say where`);
    writeFileSync(p, `${'['.repeat(20_000)}1,${']'.repeat(20_000)}`);
    await expect(readJsonFile(p)).rejects.toThrow(`${p}: not valid JSON (nested too deeply to say where)`);
    writeFileSync(p, '{"a": 1e308, "b": 1e-999}');
    await expect(readJsonFile(p)).resolves.toEqual({ a: 1e308, b: 0 });
  });
});
