/**
 * Brain-data file formats (NIfTI, HDF5, MAT, voxel masks, RGB resizing; NPY and safetensors live beside them), and
 * the output rules every writer follows: atomic writes, folder locks, finiteness checks, JSON files with located errors.
 */
export {
  readNifti,
  readNiftiHeader,
  readNiftiMasked,
  writeNifti,
  writeNiftiMap,
  niftiGrid,
  niftiVolumeCount,
  geometryFromAffine,
  niftiGeometry,
} from './nifti.js';
export type { NiftiHeader, NiftiGeometry, NiftiDatatype, NiftiReadOptions, NiftiWriteSpec, NiftiTypedArray } from './nifti.js';
export { Hdf5Reader, readHdf5Masked, writeHdf5, DEFAULT_MAX_SLAB_BYTES } from './hdf5.js';
export type { Hdf5DatasetInfo, Hdf5DatasetSpec, Hdf5TypedArray, Range } from './hdf5.js';
export { readMat, matNumeric, writeMat } from './mat.js';
export type { MatArray, MatClass, MatFile, MatReadOptions, MatSkipped, MatWriteVariable } from './mat.js';
export { maskFromVolume, maskCoordinates, assertSameGrid } from './voxelMask.js';
export type { Grid, VoxelMask } from './voxelMask.js';
export type { PngLimits } from './pngCheck.js';
export { resizeRgb } from './resize.js';
export type { RgbImage } from './resize.js';
export {
  writeFileAtomic,
  writeJsonAtomic,
  writeStreamAtomic,
  withAtomicFile,
  withAtomicPath,
  withAtomicDir,
  recoverInterruptedDir,
  removeStaleTemporaries,
} from './atomicWrite.js';
export type { AtomicWriteOptions, StreamStage } from './atomicWrite.js';
export { lockFolder, readLockHolder, FolderLock, LOCK_FILE } from './folderLock.js';
export type { LockHolder, LockOptions } from './folderLock.js';
export { assertFinite, firstNonFinite } from './finite.js';
export type { FiniteCheckOptions } from './finite.js';
export { readJsonFile, readJsonObject, parseJson } from './json.js';
