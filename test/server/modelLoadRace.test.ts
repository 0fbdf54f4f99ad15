/**
 * Loads of one name that overlap (ModelRegistry): the name is claimed when a load starts, not when it lands. Before
 * this, two loads without "replace" both landed (the later silently replacing the earlier), and a DELETE during a
 * load answered 404, after which the model appeared. The predict pool here is a stand-in whose loads land when the
 * test says, so the overlap is certain.
 */
import { describe, expect, it } from 'vitest';

import { ModelExistsError, ModelLimitError, ModelLoadCancelledError, ModelRegistry } from '../../ts/server/models/ModelRegistry.js';
import type { PredictBatcher } from '../../ts/server/models/predictBatcher.js';
import type { PredictPool } from '../../ts/server/models/predictPool.js';
import { ClosedError } from '../../ts/server/workQueue.js';

/** A predict pool whose ridge loads wait until `land` (or `fail`) is called for their path. */
function slowPool() {
  const pending = new Map<string, { resolve: (v: { features: number; targets: number }) => void; reject: (e: Error) => void }>();
  const registered = new Set<string>();
  const pool = {
    loadRidge: (key: string, path: string) =>
      new Promise<{ features: number; targets: number }>((resolve, reject) => {
        pending.set(path, {
          resolve: (v) => {
            registered.add(key);
            resolve(v);
          },
          reject,
        });
      }),
    unregister: (key: string) => registered.delete(key),
  };
  const started = (path: string) => pending.has(path);
  const land = async (path: string, features = 3) => {
    pending.get(path)!.resolve({ features, targets: 2 });
    pending.delete(path);
    await new Promise((r) => setImmediate(r));
  };
  const fail = async (path: string) => {
    pending.get(path)!.reject(new Error(`${path}: not a safetensors file`));
    pending.delete(path);
    await new Promise((r) => setImmediate(r));
  };
  return { pool: pool as unknown as PredictPool, registered, started, land, fail };
}

const ridge = (name: string, replace = false) => ({ name, kind: 'ridge' as const, replace });
const settled = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));
/** The error a settled load failed with (a load that succeeded fails the test). */
function refusal(r: { ok: true } | { ok: false; e: unknown }): Error {
  if (r.ok) throw new Error('expected the load to be refused, it succeeded');
  return r.e as Error;
}

function setup(maxModels?: number) {
  const p = slowPool();
  const reg = new ModelRegistry(p.pool, {} as PredictBatcher, ['/'], maxModels);
  const load = (o: ReturnType<typeof ridge>, path: string) => settled(reg.load(o, path, path.slice(1)));
  return { ...p, reg, load };
}

describe('ModelRegistry: loads of one name that overlap', () => {
  it('refuses a second load without replace while the first runs (409 ModelExists), and keeps the first', async () => {
    const t = setup();
    const a = t.load(ridge('z'), '/a.safetensors');
    const b = await t.load(ridge('z'), '/b.safetensors');
    expect(refusal(b)).toBeInstanceOf(ModelExistsError);
    expect(refusal(b).message).toBe(`a model named 'z' is being loaded by another request; send "replace": true to have this load replace it`);
    expect(t.started('/b.safetensors')).toBe(false);
    await t.land('/a.safetensors');
    expect((await a).ok).toBe(true);
    expect(t.reg.get('z')?.path).toBe('a.safetensors');
    // and once it is loaded, as before
    const c = await t.load(ridge('z'), '/c.safetensors');
    expect(refusal(c).message).toBe(`a model named 'z' is already loaded; send "replace": true to replace it`);
  });

  it('drops a load whose name is deleted while it runs: DELETE finds it, the model never appears, its arrays are released', async () => {
    const t = setup();
    const a = t.load(ridge('z'), '/a.safetensors');
    expect(t.reg.unload('z')).toBe(true);
    await t.land('/a.safetensors');
    const r = await a;
    expect(refusal(r)).toBeInstanceOf(ModelLoadCancelledError);
    expect((refusal(r) as ModelLoadCancelledError).code).toBe('ModelLoadCancelled');
    expect(refusal(r).message).toBe("model 'z' was unloaded (DELETE) while this load of it ran; the model it loaded was dropped");
    expect(t.reg.get('z')).toBeUndefined();
    expect(t.reg.size).toBe(0);
    expect([...t.registered]).toEqual([]);
    // the name is free again
    expect(t.reg.unload('z')).toBe(false);
    const b = t.load(ridge('z'), '/b.safetensors');
    await t.land('/b.safetensors');
    expect((await b).ok).toBe(true);
    expect(t.reg.get('z')?.path).toBe('b.safetensors');
  });

  // the route resolves the path (an await) before it loads: a DELETE in between answered 204 (dropping the other
  // loads) and this one landed after it; 2 of 15 tries of three replacing loads and a DELETE (review s45)
  it('drops a load whose request arrived before a DELETE though it reached the registry after it; DELETE finds it', async () => {
    const t = setup();
    const early = t.reg.ticket('z');
    expect(t.reg.unload('z')).toBe(true);
    const r = await settled(t.reg.load(ridge('z', true), '/a.safetensors', 'a.safetensors', early));
    expect(refusal(r)).toBeInstanceOf(ModelLoadCancelledError);
    expect(t.started('/a.safetensors')).toBe(false);
    expect(t.reg.get('z')).toBeUndefined();
    // one that arrives after the DELETE loads; a ticket given back unused leaves the name free
    const late = t.reg.ticket('z');
    const b = t.load(ridge('z'), '/b.safetensors');
    t.reg.arrived('z', late);
    expect(t.reg.unload('y')).toBe(false);
    await t.land('/b.safetensors');
    expect((await b).ok).toBe(true);
    expect(t.reg.get('z')?.path).toBe('b.safetensors');
  });

  it('a DELETE of a loaded name also drops its load under way (with replace)', async () => {
    const t = setup();
    const a = t.load(ridge('z'), '/a.safetensors');
    await t.land('/a.safetensors');
    expect((await a).ok).toBe(true);
    const b = t.load(ridge('z', true), '/b.safetensors');
    expect(t.reg.unload('z')).toBe(true);
    await t.land('/b.safetensors');
    expect(refusal(await b)).toBeInstanceOf(ModelLoadCancelledError);
    expect(t.reg.get('z')).toBeUndefined();
    expect([...t.registered]).toEqual([]);
  });

  it('with replace, the load that started later wins whichever lands first', async () => {
    // the later one lands first: the earlier is dropped when it lands
    const t = setup();
    const a = t.load(ridge('z'), '/a.safetensors');
    const b = t.load(ridge('z', true), '/b.safetensors');
    await t.land('/b.safetensors');
    expect((await b).ok).toBe(true);
    await t.land('/a.safetensors');
    const ra = await a;
    expect(refusal(ra)).toBeInstanceOf(ModelLoadCancelledError);
    expect(refusal(ra).message).toMatch(/^model 'z' was replaced by a later load of that name/);
    expect(t.reg.get('z')?.path).toBe('b.safetensors');
    expect([...t.registered]).toEqual(['z#2']);

    // the earlier one lands first: it is loaded, then replaced
    const u = setup();
    const c = u.load(ridge('y'), '/c.safetensors');
    const d = u.load(ridge('y', true), '/d.safetensors');
    await u.land('/c.safetensors');
    expect((await c).ok).toBe(true);
    expect(u.reg.get('y')?.path).toBe('c.safetensors');
    await u.land('/d.safetensors');
    expect((await d).ok).toBe(true);
    expect(u.reg.get('y')?.path).toBe('d.safetensors');
    expect([...u.registered]).toEqual(['y#2']);
  });

  it('a later load that fails leaves the earlier one to land', async () => {
    const t = setup();
    const a = t.load(ridge('z'), '/a.safetensors');
    const b = t.load(ridge('z', true), '/b.safetensors');
    await t.fail('/b.safetensors');
    expect(refusal(await b).message).toBe('/b.safetensors: not a safetensors file');
    await t.land('/a.safetensors');
    expect((await a).ok).toBe(true);
    expect(t.reg.get('z')?.path).toBe('a.safetensors');
  });

  it('drops a load that lands after close', async () => {
    const t = setup();
    const a = t.load(ridge('z'), '/a.safetensors');
    t.reg.close();
    await t.land('/a.safetensors');
    const r = await a;
    expect(refusal(r)).toBeInstanceOf(ClosedError);
    expect(t.reg.size).toBe(0);
    expect([...t.registered]).toEqual([]);
  });

  // s36: maxModels counts the names being loaded too, or loads started together would all pass the count
  it('counts loads under way against maxModels; a replace of a name under way takes no more; a failed load frees its place', async () => {
    const t = setup(2);
    const a = t.load(ridge('a'), '/a.safetensors');
    const b = t.load(ridge('b'), '/b.safetensors');
    const c = await t.load(ridge('c'), '/c.safetensors');
    expect(refusal(c)).toBeInstanceOf(ModelLimitError);
    expect(refusal(c).message).toMatch(/^cannot load model 'c': 2 models are loaded or being loaded \(a, b\), this service's limit \(maxModels\); unload one with DELETE \/v1\/models\/<name>/);
    expect(t.started('/c.safetensors')).toBe(false);
    const b2 = t.load(ridge('b', true), '/b2.safetensors');
    await t.fail('/b.safetensors');
    await t.land('/b2.safetensors');
    expect((await b2).ok).toBe(true);
    await t.land('/a.safetensors');
    expect((await a).ok).toBe(true);
    expect(refusal(await b).message).toBe('/b.safetensors: not a safetensors file');
    expect(refusal(await t.load(ridge('c'), '/c.safetensors'))).toBeInstanceOf(ModelLimitError);
    expect(t.reg.unload('a')).toBe(true);
    const c2 = t.load(ridge('c'), '/c.safetensors');
    await t.land('/c.safetensors');
    expect((await c2).ok).toBe(true);
    expect(t.reg.list().map((m) => m.name).sort()).toEqual(['b', 'c']);
  });
});
