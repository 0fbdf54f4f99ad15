/**
 * Model files laid out as downloads keep them: weights moved into an external-data file (as onnx's
 * save_as_external_data writes exports), and files moved to blobs/<sha256> with relative links back (a Hugging
 * Face cache snapshot, or a download whose large files link into the cache).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import { onnx } from '../../ts/sd/onnxProto.js';

/**
 * Moves the raw_data of the model's float initializers of 64 bytes or more into `dataName` beside it, as onnx's
 * save_as_external_data writes exports (small ones, and the shapes and axes shape inference reads, stay inline;
 * the fixture's VAE weights are a few hundred bytes).
 */
export async function externalize(path: string, dataName: string): Promise<void> {
  const m = onnx.ModelProto.decode(await readFile(path));
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of m.graph!.initializer!) {
    if ((t.rawData?.length ?? 0) < 64 || t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const raw = Buffer.from(t.rawData!);
    chunks.push(raw);
    t.externalData = [
      { key: 'location', value: dataName },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    offset += raw.length;
  }
  await writeFile(join(dirname(path), dataName), Buffer.concat(chunks));
  await writeFile(path, onnx.ModelProto.encode(m).finish());
}

/** Every file under `dir` as `pick(relative path)` decides: moved to blobs/<sha256> (or a subfolder of it) and linked back, relatively. */
export async function linkIntoBlobs(dir: string, blobs: string, pick: (rel: string) => boolean, sharded = false): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (pick(relative(dir, p))) {
        const hash = createHash('sha256').update(await readFile(p)).digest('hex');
        const blob = sharded ? join(blobs, hash.slice(0, 2), hash) : join(blobs, hash);
        await mkdir(dirname(blob), { recursive: true });
        await rename(p, blob);
        await symlink(relative(dirname(p), blob), p);
      }
    }
  };
  await walk(dir);
}
