/** A list of NSD sessions in words, apart from the betas readers (h5wasm) so that light commands can print one. */

/** "1-16, 18" for [1, …, 16, 18]. */
export function formatSessionList(s: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return parts.join(', ');
}
