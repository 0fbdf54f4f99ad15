/** Brain-data file formats: NIfTI, HDF5, MAT, voxel masks and RGB resizing (NPY and safetensors live beside them). */
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
export type { MatArray, MatClass, MatFile, MatSkipped, MatWriteVariable } from './mat.js';
export { maskFromVolume, maskCoordinates, assertSameGrid } from './voxelMask.js';
export type { Grid, VoxelMask } from './voxelMask.js';
export { resizeRgb } from './resize.js';
export type { RgbImage } from './resize.js';
