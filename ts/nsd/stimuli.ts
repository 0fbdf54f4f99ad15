import { InvalidArgumentError, ShapeError } from '../errors.js';
import { Hdf5Reader } from '../io/hdf5.js';
import { resizeRgb, type RgbImage } from '../io/resize.js';
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

  /** The image with 73k id `id` (1-based), resized to size × size (or width × height) when asked. */
  image(id: number, size?: number | { width: number; height: number }): RgbImage {
    if (!(Number.isInteger(id) && id >= 1 && id <= this.count)) {
      throw new InvalidArgumentError(`image id ${id} is out of range: ${this.path} holds ${this.count} images (73k ids 1..${this.count})`);
    }
    const data = this.reader.readSlab('imgBrick', [[id - 1, id]]);
    if (!(data instanceof Uint8Array)) throw new ShapeError(`${this.path}: imgBrick is ${data.constructor.name}, expected uint8`);
    const img: RgbImage = { data, width: this.width, height: this.height };
    if (size === undefined) return img;
    const [w, h] = typeof size === 'number' ? [size, size] : [size.width, size.height];
    return resizeRgb(img, w, h);
  }

  close(): void {
    this.reader.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** One image by 73k id, opening and closing the file (use NsdStimuli for many). */
export async function readNsdImage(root: string, id: number, size?: number): Promise<RgbImage> {
  const s = await NsdStimuli.open(root);
  try {
    return s.image(id, size);
  } finally {
    s.close();
  }
}
