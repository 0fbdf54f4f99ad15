import { describe, expect, it } from 'vitest';
import { allInOrder } from '../ts/allInOrder.js';

const later = <T>(ms: number, f: () => T) => new Promise<T>((res, rej) => setTimeout(() => { try { res(f()); } catch (e) { rej(e); } }, ms));

describe('allInOrder', () => {
  it('rejects with the first failure in input order, though a later input failed first in time', async () => {
    const fail = (m: string) => () => { throw new Error(m); };
    await expect(allInOrder([later(40, fail('first')), later(1, fail('second'))])).rejects.toThrow(/^first$/);
    await expect(allInOrder([later(30, () => 1), later(1, fail('second')), later(60, fail('third'))])).rejects.toThrow(/^second$/);
  });

  it('resolves to the values in input order', async () => {
    const [a, b] = await allInOrder([later(20, () => 'x'), later(1, () => 2)]);
    expect([a, b]).toEqual(['x', 2]);
  });
});
