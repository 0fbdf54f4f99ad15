/** The NSD dataset adapter: betas for a region, the split, stimuli and captions, dataset inventory. */
export { extractNsd, parseSessions, DEFAULT_MAX_SESSION } from './extract.js';
export type { NsdExtractOptions, ZscoreMode, ZscoreDdof } from './extract.js';
export { readNsdExtraction, writeNsdExtraction, EXTRACTION_FILES } from './output.js';
export type { KeptCacheEntry, NsdExtraction, NsdManifest, RemovedCacheEntry } from './output.js';
export { readNsdDesign, nsdTrialTable } from './expdesign.js';
export type { NsdDesign, NsdTrialTable } from './expdesign.js';
export { loadRegionMask, parseRegionSpec, resolveLabels } from './roi.js';
export type { RegionMask, RegionSpec } from './roi.js';
export { availableSessions, readSessionBetas, sessionBetasFile } from './betas.js';
export type { BetasFormatChoice } from './betas.js';
export { NsdStimuli, readNsdImage } from './stimuli.js';
export { loadNsdCaptions } from './captions.js';
export type { NsdCaptions } from './captions.js';
export { nsdInfo, formatNsdInfo, NSD_SESSIONS_COMPLETED } from './info.js';
export type { NsdInfo, NsdSubjectInfo } from './info.js';
export * as nsdPaths from './paths.js';
export type { BetasFormat, BetasVersion } from './paths.js';
