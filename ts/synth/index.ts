/** Synthetic data: procedural scenes with captions, their feature spaces, and the miniature NSD. */
export { generateScenes, randomScene, renderScene, sceneCaption, SHAPES, COLOURS, SIZES, POSITIONS, BACKGROUNDS } from './scenes.js';
export type { Scene, SceneObject, ShapeName, ColourName, SizeName, PositionName, BackgroundName } from './scenes.js';
export { latentFeatures, semanticFeatures, SEMANTIC_NAMES, SEMANTIC_DIM, LATENT_DIM, LATENT_GRID } from './features.js';
export { synthNsd } from './nsd.js';
export type { SynthNsdOptions, SynthNsdResult, SynthNsdProgress, PlantedVoxel } from './nsd.js';
export { Rng } from './rng.js';
