import { InvalidArgumentError, ShapeError } from '../errors.js';
import { Hdf5Reader } from '../io/hdf5.js';
import { checkResize, type RgbImage } from '../io/resize.js';
import { resizeRgbNative, resizeRgbNativeInto } from '../io/resizeNative.js';
import { stimuliPath } from './paths.js';

/**
 * NSD's stimulus brick (nsd_stimuli.hdf5, dataset imgBrick, (73000, 425, 425, 3) uint8), read one image at a
 * time so the 37 GB file is never loaded. Ids are NSD's 73k ids, 1-based (row = id − 1).
 */
export class NsdStimuli {
  readonly path: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  private readonly reader: Hdf5Reader;

  private constructor(path: string, reader: Hdf5Reader, shape: number[]) {
    this.path = path;
    this.reader = reader;
    [this.count, this.height, this.width] = shape;
  }

  /** Opens `root`'s stimulus file (or the file `path`) and checks the dataset is N × H × W × 3. */
  static async open(root: string, path = stimuliPath(root)): Promise<NsdStimuli> {
    const reader = await Hdf5Reader.open(path);
    try {
      const shape = reader.shape('imgBrick');
      if (shape.length !== 4 || shape[3] !== 3) {
        throw new ShapeError(`${path}: dataset imgBrick has shape (${shape.join(', ')}), expected (images, height, width, 3)`);
      }
      return new NsdStimuli(path, reader, shape);
    } catch (e) {
      reader.close();
      throw e;
    }
  }

  /**
   * The image with 73k id `id` (1-based), resized to size × size (or width × height) when asked: by the engine
   * (resizeRgbNative, the bytes of ts/io/resize.ts's resizeRgb), 425 → 512 px in ~2 ms against ~11 in TypeScript,
   * for the pipeline's thousands of training images.
   */
  image(id: number, size?: number | { width: number; height: number }): RgbImage {
    const img = this.read(id);
    if (size === undefined) return img;
    const [w, h] = sizeOf(size);
    return resizeRgbNative(img, w, h);
  }

  /** The same into `dst` (width × height × 3 bytes: the image's place in a batch), without a copy. */
  imageInto(id: number, size: number | { width: number; height: number }, dst: Uint8Array): void {
    const img = this.read(id);
    const [w, h] = sizeOf(size);
    if (w !== img.width || h !== img.height) return resizeRgbNativeInto(img, w, h, dst);
    checkResize(img, w, h);
    if (dst.length !== img.data.length) throw new InvalidArgumentError(`imageInto: dst has ${dst.length} elements, expected ${img.data.length}`);
    dst.set(img.data);
  }

  private read(id: number): RgbImage {
    if (!(Number.isInteger(id) && id >= 1 && id <= this.count)) {
      throw new InvalidArgumentError(`image id ${id} is out of range: ${this.path} holds ${this.count} images (73k ids 1..${this.count})`);
    }
    const data = this.reader.readSlab('imgBrick', [[id - 1, id]]);
    if (!(data instanceof Uint8Array)) throw new ShapeError(`${this.path}: imgBrick is ${data.constructor.name}, expected uint8`);
    return { data, width: this.width, height: this.height };
  }

  close(): void {
    this.reader.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

const sizeOf = (size: number | { width: number; height: number }): [number, number] =>
  typeof size === 'number' ? [size, size] : [size.width, size.height];

/** One image by 73k id, opening and closing the file (use NsdStimuli for many). */
export async function readNsdImage(root: string, id: number, size?: number): Promise<RgbImage> {
  const s = await NsdStimuli.open(root);
  try {
    return s.image(id, size);
  } finally {
    s.close();
  }
}
