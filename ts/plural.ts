/** A count with its noun, singular for one: `counted(1, 'problem')` → "1 problem", `counted(13, 'job')` → "13 jobs". */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
