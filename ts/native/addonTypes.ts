/**
 * The shape of what build/Release/brainlatent.node exports (hand-written, kept in step with
 * native/addon): one interface per area, joined here. Area files never import this one.
 */
import type { BandedBinding } from './bandedTypes.js';
import type { BenchBinding, EngineBinding } from './engineTypes.js';
import type { GunzipBinding } from './gunzipTypes.js';
import type { MetricsBinding } from './metricsTypes.js';
import type { RidgeBinding } from './ridgeTypes.js';
import type { OnnxModelBinding, SamplerBinding } from './samplerTypes.js';

export type { CancelToken, NativeBackendInfo, NativeBuildInfo } from './engineTypes.js';
export type { NativeRidgeInfo, NativeRidgeOptions, NativeRidgeResult, NativeRidgeSolver } from './ridgeTypes.js';

export type Binding = EngineBinding & BenchBinding & RidgeBinding & BandedBinding & SamplerBinding & OnnxModelBinding & MetricsBinding & GunzipBinding;
