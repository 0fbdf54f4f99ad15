/// <reference types="node" preserve="true" />
/** `brainlatent/server`: the Fastify plugin, a standalone server, and the pieces a host app may reuse. */
export { brainlatentPlugin } from './plugin.js';
export type { BrainlatentPluginOptions, PoolLimits } from './context.js';
export { startServer } from './serve.js';
export { frameworkErrors } from './httpErrors.js';
export type { ServeOptions, ServeLogger, LogLevel, RunningServer, TrustProxy } from './serve.js';
export { LocalJobRunner, JobConflictError } from './jobs/LocalJobRunner.js';
export type { LocalRunnerOptions } from './jobs/LocalJobRunner.js';
export type { JobRunner, JobSpec, RunnerReadiness, BatchQueue } from './jobs/JobRunner.js';
export { JobBoard } from './jobs/jobBoard.js';
export type { JobEvent, JobKind, JobProgress, JobState, JobView, JobControl, StageUpdate } from './jobs/types.js';
export type { LoggedEvent, JobListener } from './jobs/jobBoard.js';
export type { PublicError } from './publicError.js';
export { JobBodySchema } from './schemas.js';
export { QueueFullError } from './workQueue.js';
export { PathOutsideRootError } from './rootPaths.js';
