/**
 * The reconstruction report's alpha-edge facts, chosen-α chart and the decoders stage's warning count the same
 * targets: those with a positive CV score at some alpha. Before, the chart counted every target that varies, the
 * targets the features do not predict too (they score <= 0 at every alpha and choose the largest), so the demo's
 * z decoder showed 0.0% / 0.9% in the table beside 17% at 1e5 coloured 'grid edge, > 5% of targets' in the chart,
 * and the report never said how many such targets there were.
 */
import { describe, expect, it } from 'vitest';

import { matrix } from '../../ts/matrix.js';
import { alphaHistogramSpec, type DecoderSummary } from '../../ts/pipeline/decoderCharts.js';
import { alphaEdgeRows } from '../../ts/pipeline/report.js';
import { decoderEdgeWarning } from '../../ts/pipeline/stages.js';
import { alphaDiagnostics } from '../../ts/ridge/alphaDiagnostics.js';

describe('decoder alpha-edge statistics: table, chart and warning over the same targets', () => {
  const grid = [1, 10, 100];
  // per target, the CV R² at each alpha (columns: 2 constant, 4 unpredictable, 4 predictable)
  const perTarget = [
    [0, 0, 0], [0, 0, 0],
    [-0.3, -0.2, -0.1], [-0.3, -0.2, -0.1], [-0.5, -0.2, -0.05], [-0.4, -0.1, -0.01],
    [0.4, 0.3, 0.1], [0.1, 0.3, 0.2], [0.1, 0.2, 0.1], [0.0, 0.2, 0.1],
  ];
  const T = perTarget.length;
  const cv = matrix(Float32Array.from({ length: grid.length * T }, (_, k) => perTarget[k % T][Math.floor(k / T)]), grid.length, T);
  const best = Float32Array.from(perTarget, (s) => grid[s.indexOf(Math.max(...s))]);
  const diag = alphaDiagnostics(grid, best, cv, 'r2');
  const summary: DecoderSummary = { roi: 'v', trainRows: 50, voxels: 20, targets: T, meanCvScore: 0, testFeatureCorrelation: 0, ...diag };

  it('counts the predictable targets per alpha apart', () => {
    expect(diag.constantTargets).toBe(2);
    expect(diag.unpredictableTargets).toBe(4);
    expect(diag.alphaCounts).toEqual([1, 3, 4]);
    expect(diag.predictableAlphaCounts).toEqual([1, 3, 0]);
    expect([diag.edgeLow, diag.edgeHigh]).toEqual([0.25, 0]);
  });

  it('the chart shows the shares the table gives, and says which targets it leaves out', () => {
    const spec = alphaHistogramSpec('z', summary) as { title: { subtitle: string[] }; data: { values: { share: number; where: string }[] } };
    const v = spec.data.values;
    expect(v.map((x) => x.share)).toEqual([25, 75, 0]);
    expect(v[0].share).toBe(100 * diag.edgeLow);
    expect(v[2].share).toBe(100 * diag.edgeHigh);
    // the largest alpha is no edge problem: the unpredictable targets there are not counted (was 50%, orange)
    expect(v.map((x) => x.where)).toEqual(['grid edge, > 5% of targets', 'inside', 'inside']);
    expect(spec.title.subtitle).toEqual(['share of its 4 targets with CV R² > 0', '4 with CV R² ≤ 0 at every α left out', '2 constant targets left out']);
  });

  it('the table shows the unpredictable targets and words the edge row as a choice', () => {
    const html = alphaEdgeRows(summary);
    expect(html).toContain('<tr><td>targets with CV R² ≤ 0 at every α</td><td>4 <small>');
    expect(html).toContain("<tr><td>of the 4 targets with CV R² &gt; 0 at some α, the share that chose the grid's smallest / largest α</td><td>25.0% / 0.0%</td></tr>");
  });

  it('the warning counts the same targets and says how many more it leaves out', () => {
    expect(decoderEdgeWarning('z', grid, diag)).toBe(
      "25.0% of the z decoder's 4 targets with a positive CV score at some alpha chose the smallest alpha (1e+0); consider widening the grid downwards " +
        '(4 more score <= 0 at every alpha: the features predict nothing there, and a wider grid would not change that)',
    );
  });

  it('a run folder from before the predictable counts were recorded: the chart says it counts every target that varies', () => {
    const { predictableAlphaCounts: _, ...old } = summary;
    const spec = alphaHistogramSpec('z', old) as { title: { subtitle: string[] }; data: { values: { share: number }[] } };
    expect(spec.data.values.map((x) => x.share)).toEqual([12.5, 37.5, 50]);
    expect(spec.title.subtitle).toEqual(['share of its 8 non-constant targets', 'incl. 4 with CV R² ≤ 0 at every α', '2 constant targets left out']);
  });
});
