/**
 * The measured convergence order of `bench samplers`: −Δlog(error)/Δlog(U-Net calls) per scheduler, fitted on
 * the points that lie above a floor — the error level below which a measured error no longer says how far the
 * scheduler is from its limit. The floor is estimated from the references alone, never from the results being
 * fitted (the old rule took the best error any scheduler reached, so the most accurate scheduler always lost its
 * own points):
 *
 * - against the converged solution: how far the converged solution is from its own limit, estimated as the
 *   difference between it at N steps and at ⌈N/2⌉ steps (the same solver, the same start; an overestimate for a
 *   solver of order above 1);
 * - against the exact ODE: the exact reference's own error, estimated as the difference between the float64 ODE at
 *   the bench's tolerance and at a 100× looser one (again an overestimate).
 *
 * Neither floor hides the level at which a float32 scheduler's own error stops falling (it depends on the
 * scheduler and grows with the step count): such points stay in the fit and lower the measured order, as they
 * do on the log-log charts.
 */

/** Points whose error is within this factor of the floor are excluded from the fit. */
export const FLOOR_MARGIN = 3;
/** Points with a larger relative error are excluded: too few steps pick the wrong mixture component (no asymptotics yet). */
export const PRE_ASYMPTOTIC = 0.1;

/**
 * The mean local order −Δlog(error)/Δlog(calls) over consecutive step counts whose errors both lie above
 * FLOOR_MARGIN × `floor` and below PRE_ASYMPTOTIC. `floor` must come from the references (see the module
 * comment), not from the points. Null when no pair qualifies.
 */
export function convergenceOrder(points: { calls: number; err: number }[], floor = 0): number | null {
  const pts = [...points].sort((a, b) => a.calls - b.calls);
  const slopes: number[] = [];
  const usable = (e: number): boolean => Number.isFinite(e) && e > 0 && e <= PRE_ASYMPTOTIC && e > FLOOR_MARGIN * floor;
  for (let i = 1; i < pts.length; i++) {
    const [a, b] = [pts[i - 1], pts[i]];
    if (!usable(a.err) || !usable(b.err) || a.calls === b.calls) continue;
    slopes.push(-Math.log(b.err / a.err) / Math.log(b.calls / a.calls));
  }
  return slopes.length ? slopes.reduce((x, y) => x + y, 0) / slopes.length : null;
}

/** The floors the fit uses, as recorded in the bench's JSON. */
export interface OrderFloors {
  /** ‖x_conv(N) − x_conv(⌈N/2⌉)‖ / ‖x_conv(N)‖: the converged solution's own uncertainty. */
  vsConverged: number;
  /** ‖x_conv(N) − x_ode‖ / ‖x_ode‖ between the converged run's own noise levels (demo world only; null otherwise). */
  vsExact: number | null;
}

/**
 * Whether a run is off its timestep grid: DDIM and PNDM step from t to t − ⌊T/N⌋ (diffusers' `prev_timestep`), while
 * trailing spacing's grid moves by T/N, so unless N divides T (num_train_timesteps) the sample sits at a noise level
 * other than the one the next U-Net call is told. Such a run's errors measure that mismatch, not the scheduler's
 * discretisation (DDIM at 7 steps: 4e-2 against the exact ODE where Euler on the same grid is 7e-4), so they are left
 * out of every order fit and of the common noise level. diffusers does the same (the engine matches it).
 */
export function offGrid(scheduler: string, steps: number, trainTimesteps: number): boolean {
  return (scheduler === 'ddim' || scheduler === 'pndm') && trainTimesteps % steps !== 0;
}

/** Why a run is left out, as the console, the HTML and the record say it. */
export const offGridReason = (trainTimesteps: number): string =>
  `DDIM/PNDM off the grid: they step by ⌊${trainTimesteps}/N⌋ while the trailing grid moves by ${trainTimesteps}/N, unless N divides ${trainTimesteps}`;

interface OrderRow {
  scheduler: string;
  unetCallsPerImage: number;
  relErrorConverged?: number;
  relErrorExact?: number;
  /** A run off its grid (`offGrid`): left out of the fit. */
  offGrid?: boolean;
}

/** The measured order per scheduler, against the converged solution and (demo world) the exact ODE; runs off their grid are left out. */
export function measuredOrders(
  rows: readonly OrderRow[],
  schedulers: readonly string[],
  floors: OrderFloors,
): Record<string, { vsConverged: number | null; vsExact: number | null }> {
  const out: Record<string, { vsConverged: number | null; vsExact: number | null }> = {};
  for (const s of schedulers) {
    const pts = rows.filter((r) => r.scheduler === s && r.relErrorConverged !== undefined && r.offGrid !== true);
    const curve = (field: 'relErrorConverged' | 'relErrorExact') =>
      pts.filter((p) => p[field] !== undefined).map((p) => ({ calls: p.unetCallsPerImage, err: p[field] as number }));
    const exact = curve('relErrorExact');
    out[s] = {
      vsConverged: pts.length ? convergenceOrder(curve('relErrorConverged'), floors.vsConverged) : null,
      vsExact: exact.length && floors.vsExact !== null ? convergenceOrder(exact, floors.vsExact) : null,
    };
  }
  return out;
}

/**
 * The common noise level of the bench's cleaner convergence measure: the smallest-σ timestep (the smallest t)
 * that every grid reaches as a state, i.e. that every run's timestep list holds after its first entry (the
 * start, where every run equals the exact ODE). Under trailing spacing with N steps dividing 1000 the grids
 * are t = 1000·(1 − k/N) − 1, so 10, 20 and 40 steps share t = 99. Null when the grids share no such
 * timestep (a one-step run, or step counts like 3 and 7).
 */
export function commonNoiseLevel(grids: readonly (readonly number[])[]): number | null {
  if (!grids.length) return null;
  let common: number[] = [...new Set(grids[0].filter((t) => t !== grids[0][0]))];
  for (const g of grids.slice(1)) {
    const reached = new Set(g.filter((t) => t !== g[0]));
    common = common.filter((t) => reached.has(t));
  }
  const ts = common;
  return ts.length ? Math.min(...ts) : null;
}

interface CommonRow {
  scheduler: string;
  unetCallsPerImage: number;
  /** The scheduler's state at the common noise level against the exact ODE to that level. */
  relErrorCommon?: number;
}

/**
 * The measured order at the common noise level per scheduler: convergenceOrder on (U-Net calls of the whole
 * run, error at the common level) with `floor` (the exact ODE's own error at that level, from two tolerances;
 * see the module comment). Null for a scheduler without such points (stochastic, or no common level).
 */
export function commonLevelOrders(rows: readonly CommonRow[], schedulers: readonly string[], floor: number | null): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const s of schedulers) {
    const pts = rows
      .filter((r) => r.scheduler === s && r.relErrorCommon !== undefined)
      .map((r) => ({ calls: r.unetCallsPerImage, err: r.relErrorCommon as number }));
    out[s] = pts.length && floor !== null ? convergenceOrder(pts, floor) : null;
  }
  return out;
}
