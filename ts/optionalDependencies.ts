/**
 * The packages only some features need: optional dependencies in package.json, so that
 * `npm install brainlatent --omit=optional` leaves them out (the service's OpenAPI document and metrics,
 * the Redis batch queues, the reports' charts and brain viewer, the source build's tools). No module of
 * ts/ imports one statically (scripts/check-imports.mjs refuses it; `import type` is fine, it is erased):
 * each is loaded here, where it is first used, and a missing one is a MissingDependencyError that names
 * the feature and the install command with package.json's pins — read from package.json, so the pin is
 * written once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { MissingDependencyError } from './errors.js';

/**
 * Each optional dependency and what needs it (the README's "Slim install" says the same). A test checks these
 * keys against package.json's optionalDependencies.
 */
export const OPTIONAL_PACKAGES = {
  '@fastify/swagger': "the service's OpenAPI document (brainlatent serve, brainlatentPlugin)",
  'prom-client': "the service's Prometheus metrics",
  bullmq: 'batch queues on Redis (batch … --redis, worker, serve --redis)',
  ioredis: 'the Redis client BullMQ drives',
  vega: "the reports' charts (reconstruct, bench samplers)",
  'vega-lite': "the reports' charts",
  '@niivue/niivue': "the encoding report's brain viewer",
  'cmake-js': 'building the engine from source',
  'node-addon-api': 'building the engine from source',
} as const;

export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES;

interface Manifest {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

let manifest: Manifest | undefined;

/** This package's package.json: one folder up from ts/ (tests) and from dist/ (the installed package). */
function packageManifest(): Manifest {
  manifest ??= JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Manifest;
  return manifest;
}

/** The version package.json pins for `name` (optional, peer or regular dependency). */
export function pinnedVersion(name: string): string {
  const m = packageManifest();
  const pin = m.optionalDependencies?.[name] ?? m.peerDependencies?.[name] ?? m.dependencies?.[name];
  if (!pin) throw new Error(`optionalDependencies: package.json pins no version of '${name}'`);
  return pin;
}

/** `npm install a@1.2.3 b@4.5.6`, with package.json's pins. */
export function installCommand(packages: readonly string[]): string {
  return `npm install ${packages.map((p) => `${p}@${pinnedVersion(p)}`).join(' ')}`;
}

/** Whether `e` says that `name` itself (not one of its own dependencies) could not be found. */
export function isMissingPackage(e: unknown, name: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  // Node: "Cannot find package 'bullmq' imported from …", "Cannot find module 'prom-client'"
  return new RegExp(`Cannot find (?:package|module) '${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?:/[^']*)?'`).test(String((e as Error).message));
}

type Loaders = { [name in OptionalPackage]?: () => Promise<unknown> };

/**
 * Imports every package of `loaders` (package name → `() => import('name')`); if any is missing, one
 * MissingDependencyError names all the missing ones, so a single install command covers the feature.
 */
export async function loadOptional(feature: string, loaders: Loaders): Promise<Record<string, unknown>> {
  const names = Object.keys(loaders) as OptionalPackage[];
  const settled = await Promise.allSettled(names.map((n) => loaders[n]!()));
  const missing = names.filter((n, i) => settled[i].status === 'rejected' && isMissingPackage((settled[i] as PromiseRejectedResult).reason, n));
  if (missing.length) throw new MissingDependencyError(missing, feature, installCommand(missing));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return Object.fromEntries(names.map((n, i) => [n, (settled[i] as PromiseFulfilledResult<unknown>).value]));
}

// The modules' types for their named exports (and @fastify/swagger's `default`, which is its module.exports as
// Node imports it): a CommonJS package's `default` under import() is module.exports, which the declared types of
// ioredis and prom-client do not say, and nothing here uses it.
interface RedisQueueModules {
  bullmq: typeof import('bullmq');
  ioredis: typeof import('ioredis');
}
interface ChartModules {
  vega: typeof import('vega');
  'vega-lite': typeof import('vega-lite');
}
interface ServiceModules {
  '@fastify/swagger': typeof import('@fastify/swagger');
  'prom-client': typeof import('prom-client');
}

/** BullMQ and ioredis: `batch run|submit|status|… --redis`, `worker`, `serve --redis`. */
export async function loadRedisQueue(feature = 'batch queues on Redis (--redis, worker)'): Promise<RedisQueueModules> {
  return (await loadOptional(feature, { bullmq: () => import('bullmq'), ioredis: () => import('ioredis') })) as unknown as RedisQueueModules;
}

/** vega and vega-lite: the reports' charts, rendered to SVG in Node. */
export async function loadCharts(feature = 'report charts'): Promise<ChartModules> {
  return (await loadOptional(feature, { vega: () => import('vega'), 'vega-lite': () => import('vega-lite') })) as unknown as ChartModules;
}

/** @fastify/swagger and prom-client: the service (both loaded at once, so one command installs what it needs). */
export async function loadServicePackages(feature = 'the service (brainlatent serve, brainlatentPlugin)'): Promise<ServiceModules> {
  const loaders = { '@fastify/swagger': () => import('@fastify/swagger'), 'prom-client': () => import('prom-client') };
  return (await loadOptional(feature, loaders)) as unknown as ServiceModules;
}

const require = createRequire(import.meta.url);

/**
 * prom-client, loaded synchronously (a CommonJS package; the service's metrics are built in a constructor).
 * The plugin has loaded it already through loadServicePackages, so this only fails for a direct caller.
 */
export function requirePromClient(feature = "the service's metrics"): typeof import('prom-client') {
  try {
    return require('prom-client') as typeof import('prom-client');
  } catch (e) {
    if (isMissingPackage(e, 'prom-client')) throw new MissingDependencyError(['prom-client'], feature, installCommand(['prom-client']));
    throw e;
  }
}

/**
 * A file inside an optional package (not imported: copied, like NiiVue's bundle into a report), found where Node
 * would find the package, or a MissingDependencyError. Searched by folder, because a package's `exports` may not
 * list the file.
 */
export function optionalPackageFile(name: OptionalPackage, file: string, feature: string): string {
  const searched = require.resolve.paths(name) ?? [];
  for (const dir of searched) {
    const path = join(dir, name, file);
    if (existsSync(path)) return path;
  }
  throw new MissingDependencyError([name], feature, installCommand([name]));
}

/**
 * Whether an optional package is installed where Node would find it from this package (its package.json, searched
 * by folder as optionalPackageFile does): a report written without it is redone once it is (stageState).
 */
export function optionalPackageInstalled(name: string): boolean {
  return (require.resolve.paths(name) ?? []).some((dir) => existsSync(join(dir, name, 'package.json')));
}

/** How to install onnxruntime-node (an optional peer dependency), with package.json's pin. */
export function onnxruntimeNodeInstallCommand(): string {
  return installCommand(['onnxruntime-node']);
}

/**
 * The onnxruntime-node install command to print in a hint: with ONNXRUNTIME_NODE_INSTALL=skip, since npm 11 runs its
 * post-install (unapproved dependency scripts run, with a warning), which downloads CUDA binaries from NuGet and
 * fails offline; brainlatent needs only its CPU core and JavaScript API.
 */
export function onnxruntimeNodeInstallLine(): string {
  return `ONNXRUNTIME_NODE_INSTALL=skip ${onnxruntimeNodeInstallCommand()}`;
}
