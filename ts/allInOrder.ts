/**
 * Promise.all whose failure is the first in the input's order, not the first in time: when two inputs are
 * bad, the message names the same one on every run (reads race, so Promise.all named either).
 */
export async function allInOrder<T extends readonly unknown[]>(promises: [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T>;
export async function allInOrder<T>(promises: Promise<T>[]): Promise<T[]>;
export async function allInOrder(promises: Promise<unknown>[]): Promise<unknown[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value);
}
