import { describe, expect, it } from 'vitest';

import { renderVegaLiteSvg } from '../../ts/charts/vegaSvg.js';

const bars = (title: string) => ({
  title,
  width: 200,
  height: 100,
  data: { values: [{ alpha: '1e1', targets: 3 }, { alpha: '1e2', targets: 10 }, { alpha: '1e3', targets: 5 }] },
  mark: 'bar',
  encoding: {
    x: { field: 'alpha', type: 'ordinal', title: 'alpha', sort: null },
    y: { field: 'targets', type: 'quantitative', title: 'targets' },
  },
});

describe('renderVegaLiteSvg', () => {
  it('renders a Vega-Lite spec to a standalone SVG with its marks, labels and title', async () => {
    const svg = await renderVegaLiteSvg(bars('Chosen alphas'));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('Chosen alphas');
    for (const label of ['1e1', '1e2', '1e3']) expect(svg).toContain(`>${label}<`);
    // one bar per datum: vega draws bar marks as paths in a group of role "mark"
    const marks = svg.match(/role-mark[^>]*>(.*?)<\/g>/s)?.[1] ?? '';
    expect(marks.match(/<path/g)?.length).toBe(3);
    // taller bar for more targets: y-axis ticks reach 10
    expect(svg).toContain('>10<');
  });

  it('gives every chart its own element ids, so several can be inlined in one page', async () => {
    const spec = { ...bars('a'), mark: { type: 'bar', clip: true } };
    const [a, b] = await Promise.all([renderVegaLiteSvg(spec), renderVegaLiteSvg(spec)]);
    const ids = (s: string) => [...s.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids(a).length).toBeGreaterThan(0);
    for (const id of ids(a)) expect(ids(b)).not.toContain(id);
    for (const ref of a.matchAll(/url\(#([^)]+)\)/g)) expect(ids(a)).toContain(ref[1]);
  });

  it('refuses specs that load data from a URL or do not compile cleanly', async () => {
    await expect(renderVegaLiteSvg({ ...bars('x'), data: { url: 'https://example.org/data.json' } })).rejects.toThrow(/inline/);
    await expect(renderVegaLiteSvg({ ...bars('x'), mark: 'no-such-mark' })).rejects.toThrow(/does not compile|no-such-mark/);
    // vega-lite drops an encoding channel it cannot use and warns: that is an error here
    await expect(renderVegaLiteSvg({ ...bars('x'), encoding: { ...bars('x').encoding, shape: { field: 'alpha', type: 'nominal' } } })).rejects.toThrow(/warned/);
    await expect(renderVegaLiteSvg([] as unknown as object)).rejects.toThrow(/spec object/);
  });
});
