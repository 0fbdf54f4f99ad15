import path from 'node:path';

import { loadedAddonPath, packageRoot } from './binding.js';
import { nativeSync } from './call.js';
import type { NativeBuildInfo } from './engineTypes.js';
import type { NativeGunzipInfo } from './gunzipTypes.js';

export interface BuildInfo extends NativeBuildInfo {
  /** The addon file that was loaded. */
  addon: string;
  /** 'prebuilt' (shipped in prebuilds/, static OpenBLAS), 'source' (built here, system BLAS) or 'override' (BRAINLATENT_ADDON). */
  origin: 'prebuilt' | 'source' | 'override';
  /** ISA-L's inflate, which the readers use for .nii.gz when it loads (ts/io/gunzip.ts): from where, or why not. */
  gunzip: NativeGunzipInfo;
}

/** What the native engine was built with: BLAS vendor, thread count, backends (and why the missing ones are missing), where it was loaded from, and whether ISA-L's inflate is there. */
export function buildInfo(): BuildInfo {
  const info = nativeSync((b) => b.buildInfo());
  const addon = loadedAddonPath();
  const origin = process.env.BRAINLATENT_ADDON
    ? 'override'
    : path.relative(packageRoot, addon).split(path.sep)[0] === 'prebuilds'
      ? 'prebuilt'
      : 'source';
  return { ...info, addon, origin, gunzip: nativeSync((b) => b.gunzipInfo()) };
}
