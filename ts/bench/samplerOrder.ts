/**
 * The measured convergence order of `bench samplers`: −slope of log(error) vs log(U-Net calls) per scheduler (per
 * U-Net call, not per step), a least-squares fit on the points up to the smallest error that lie above a floor — the error level below which a measured error no longer says how far the
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
/** The fewest points an order is fitted on (two: the slope between them). */
export const MIN_ORDER_POINTS = 2;
/**
 * What every measured order is per: U-Net calls per image, not steps (PNDM makes N + 1 calls for N steps, Heun 2N − 1),
 * so a scheduler's order here is its order per unit of work. The console, the HTML and the record say so.
 */
export const ORDER_UNIT = 'per U-Net call: −slope of log error vs log U-Net calls per image (not per step: PNDM makes N + 1 calls, Heun 2N − 1)';

/** A fitted order, or null with why (for the console, the HTML and the record). */
export interface OrderFit {
  order: number | null;
  /** The U-Net calls of the points the slope was fitted on. */
  calls: number[];
  /** Why there is no order (null when there is one). */
  reason: string | null;
}

const fmt = (v: number): string => v.toExponential(2);

/**
 * The order as the least-squares slope of log error vs log U-Net calls over the points between FLOOR_MARGIN × `floor`
 * and PRE_ASYMPTOTIC, up to the smallest of their errors: past it the error grows (the last step is never refined:
 * trailing spacing's last σ ratio is ≈ √2 at any step count), and a slope there is not the discretisation's order
 * (the old mean of local slopes averaged Heun's +1.33 with −0.27 into 0.53). `floor` must come from the references
 * (see the module comment), not from the points; `floorName` names it and `hint` says what would bring points above
 * it, in the reason when every error is below it. Fewer than MIN_ORDER_POINTS points: no order, with the reason.
 */
export function fitOrder(points: readonly { calls: number; err: number }[], floor = 0, floorName = 'the floor', hint = ''): OrderFit {
  const none = (reason: string): OrderFit => ({ order: null, calls: [], reason });
  const pts = [...points].filter((p) => Number.isFinite(p.err) && p.err > 0).sort((a, b) => a.calls - b.calls);
  if (!pts.length) return none('no finite error');
  const cut = FLOOR_MARGIN * floor;
  const usable = pts.filter((p) => p.err <= PRE_ASYMPTOTIC && p.err > cut);
  const belowFloor = pts.filter((p) => p.err <= cut).length;
  const floorText = `${FLOOR_MARGIN}× ${floorName} ${fmt(floor)}`;
  if (!usable.length) {
    if (belowFloor === pts.length) return none(`every error below ${floorText}${hint ? `: ${hint}` : ''}`);
    if (belowFloor === 0) return none(`every error above ${PRE_ASYMPTOTIC} (before the asymptotic range: add larger --steps)`);
    return none(`no error between ${floorText} and ${PRE_ASYMPTOTIC}`);
  }
  // up to the smallest error (the first of equal ones): the part where more calls still lower the error
  let last = 0;
  for (let i = 1; i < usable.length; i++) if (usable[i].err < usable[last].err) last = i;
  const kept = usable.slice(0, last + 1);
  const distinct = new Set(kept.map((p) => p.calls)).size;
  if (distinct < MIN_ORDER_POINTS) {
    const past = usable.length - kept.length;
    return none(
      `${distinct === 1 ? 'one point' : 'no point'} between ${floorText} and ${PRE_ASYMPTOTIC}` +
        (past ? ` before the smallest error (${past} past it, where the error grows)` : '') +
        (belowFloor ? `, ${belowFloor} below ${FLOOR_MARGIN}× the floor${hint ? ` (${hint})` : ''}` : '') +
        `; an order needs ${MIN_ORDER_POINTS}`,
    );
  }
  return { order: logLogSlopeOrder(kept), calls: kept.map((p) => p.calls), reason: null };
}

/** −(least-squares slope of log error vs log calls). */
function logLogSlopeOrder(kept: readonly { calls: number; err: number }[]): number {
  const x = kept.map((p) => Math.log(p.calls));
  const y = kept.map((p) => Math.log(p.err));
  const mx = x.reduce((a, b) => a + b, 0) / x.length;
  const my = y.reduce((a, b) => a + b, 0) / y.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  return -sxy / sxx;
}

/** fitOrder's order alone: null when there is none. */
export function convergenceOrder(points: readonly { calls: number; err: number }[], floor = 0): number | null {
  return fitOrder(points, floor).order;
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

/** Why a scheduler has no order at all: it draws noise, so its runs have no accuracy figures. */
export const STOCHASTIC_REASON = 'stochastic (no accuracy runs)';
/** What would bring the vs-converged errors above their floor. */
export const CONVERGED_HINT = 'raise --converged-steps (a lower floor) or add smaller --steps';
/** What would bring the vs-exact errors above their floor (the exact ODE's tolerance is fixed). */
const EXACT_HINT = 'add smaller --steps';

/** One scheduler's measured orders (per U-Net call, ORDER_UNIT) and, for each null, why. */
export interface MeasuredOrder {
  vsConverged: number | null;
  vsExact: number | null;
  reason: { vsConverged: string | null; vsExact: string | null };
}

/** The measured order per scheduler, against the converged solution and (demo world) the exact ODE; runs off their grid are left out. */
export function measuredOrders(rows: readonly OrderRow[], schedulers: readonly string[], floors: OrderFloors): Record<string, MeasuredOrder> {
  const out: Record<string, MeasuredOrder> = {};
  for (const s of schedulers) {
    const pts = rows.filter((r) => r.scheduler === s && r.relErrorConverged !== undefined && r.offGrid !== true);
    const curve = (field: 'relErrorConverged' | 'relErrorExact') =>
      pts.filter((p) => p[field] !== undefined).map((p) => ({ calls: p.unetCallsPerImage, err: p[field] as number }));
    const anyRun = rows.some((r) => r.scheduler === s && r.relErrorConverged !== undefined);
    const noPoints = anyRun ? 'every run off its timestep grid' : STOCHASTIC_REASON;
    const conv = pts.length ? fitOrder(curve('relErrorConverged'), floors.vsConverged, 'the converged floor', CONVERGED_HINT) : null;
    const exactPts = curve('relErrorExact');
    const exact = exactPts.length && floors.vsExact !== null ? fitOrder(exactPts, floors.vsExact, 'the exact-ODE floor', EXACT_HINT) : null;
    const off = rows.filter((r) => r.scheduler === s && r.offGrid === true).length;
    const withOff = (why: string | null): string | null => (why !== null && off && pts.length ? `${why} (${off} run${off === 1 ? '' : 's'} off the grid left out)` : why);
    out[s] = {
      vsConverged: conv?.order ?? null,
      vsExact: exact?.order ?? null,
      reason: {
        vsConverged: withOff(conv ? conv.reason : noPoints),
        vsExact: withOff(exact ? exact.reason : floors.vsExact === null ? 'no exact ODE (not a demo world)' : noPoints),
      },
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
  /** Present for a deterministic scheduler's run (stochastic ones have no accuracy figures). */
  relErrorConverged?: number;
  offGrid?: boolean;
}

/**
 * The measured order at the common noise level per scheduler: fitOrder on (U-Net calls of the whole run, error at the
 * common level) with `floor` (the exact ODE's own error at that level, from two tolerances; see the module comment),
 * and why for each null. Null for a scheduler without such points (stochastic, or no common level).
 *
 * With `sameRunsAs` (the state's fits, for its x̂0's), each scheduler's slope is fitted on the runs that fit used, or
 * is null with its reason: x̂0's errors are ~50–100× smaller, so its own cuts (the floor, PRE_ASYMPTOTIC) would take
 * other runs, and the two orders, which measure one error in other units, would differ (PNDM 5.14 / 4.52, review s43).
 */
export function commonLevelFits(
  rows: readonly CommonRow[],
  schedulers: readonly string[],
  floor: number | null,
  sameRunsAs?: Readonly<Record<string, OrderFit>>,
): Record<string, OrderFit> {
  const out: Record<string, OrderFit> = {};
  for (const s of schedulers) {
    const pts = rows
      .filter((r) => r.scheduler === s && r.relErrorCommon !== undefined)
      .map((r) => ({ calls: r.unetCallsPerImage, err: r.relErrorCommon as number }));
    const state = sameRunsAs?.[s];
    if (state) {
      const kept = pts.filter((p) => state.calls.includes(p.calls));
      out[s] =
        state.order === null ? { order: null, calls: [], reason: `as the state's: ${state.reason}` }
        : kept.length === state.calls.length && kept.every((p) => Number.isFinite(p.err) && p.err > 0) ? { order: logLogSlopeOrder(kept), calls: state.calls, reason: null }
        : { order: null, calls: [], reason: "an error of 0 or not finite at one of the state's runs (no log to fit)" };
    } else if (floor === null) out[s] = { order: null, calls: [], reason: 'no floor' };
    else if (!pts.length) {
      const deterministic = rows.some((r) => r.scheduler === s && r.relErrorConverged !== undefined);
      out[s] = { order: null, calls: [], reason: deterministic ? 'every run off its timestep grid' : STOCHASTIC_REASON };
    }
    else {
      const fit = fitOrder(pts, floor, "the exact ODE's floor at that level", EXACT_HINT);
      const off = rows.filter((r) => r.scheduler === s && r.offGrid === true).length;
      out[s] = fit.reason !== null && off ? { ...fit, reason: `${fit.reason} (${off} run${off === 1 ? '' : 's'} off the grid left out)` } : fit;
    }
  }
  return out;
}

/** commonLevelFits' orders alone. */
export function commonLevelOrders(rows: readonly CommonRow[], schedulers: readonly string[], floor: number | null): Record<string, number | null> {
  return Object.fromEntries(Object.entries(commonLevelFits(rows, schedulers, floor)).map(([s, f]) => [s, f.order]));
}

/**
 * The console's account of the missing orders of one column (`against`: "vs converged", …): one line per reason with
 * the schedulers it holds for, so "—" never stands without a why. Empty when every scheduler has an order.
 */
export function missingOrderLines(against: string, reasons: Readonly<Record<string, string | null>>): string[] {
  const by = new Map<string, string[]>();
  for (const [s, r] of Object.entries(reasons)) if (r !== null) by.set(r, [...(by.get(r) ?? []), s]);
  return [...by].map(([r, ss]) => `no order ${against} for ${ss.join(', ')}: ${r}`);
}
