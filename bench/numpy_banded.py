"""Plain numpy banded ridge with brainlatent's protocol (himalaya's solve_multiple_kernel_ridge_random_search).

The same computation as the engine's per-fold kernel route under band weights, written the direct way:
X z-scored per column (population spread, as the engine's standardize), one kernel per band K_b = X_b X_bᵀ;
then per candidate γ and per fold, the training block of K_γ = Σ γ_b K_b centred with the training means,
one symmetric eigendecomposition (float64, as the engine's precision rule chose here), the held-out
predictions of every alpha and their R² per target; each target keeps the (γ, α) with the best mean fold
score (a later γ must improve strictly, ties in α to the larger); one all-sample decomposition per chosen γ
for the refit. float32 GEMMs like the engine, numpy's BLAS (OpenBLAS here).

Run by ts/bench/banded.ts (`brainlatent bench banded`) with Debian's python3-numpy (/usr/bin/python3). Prints one JSON line and writes best_alpha.npy,
best_gamma.npy and coef.npy into out_folder. gammas.npy: the engine's candidates (BandedRidgeModel.gammas,
candidates × bands), so that both search the same γ; folds.npy: the fold of each row (assignFolds).
X is standardised (as encode's banded fits), the coefficients are those of the standardised X.
Arguments: folder band1.npy[,band2.npy...] y.npy folds.npy gammas.npy alphas(start:stop:count) out_folder
"""
import json
import sys
import time

import numpy as np

folder, band_files, y_file, folds_file, gammas_file, alpha_spec, out = sys.argv[1:8]
bands = [np.load(f"{folder}/{f}").astype(np.float32) for f in band_files.split(",")]
y = np.load(f"{folder}/{y_file}").astype(np.float32)
folds = np.load(f"{folder}/{folds_file}")
gammas = np.load(gammas_file)
a0, a1, na = alpha_spec.split(":")
alphas = np.logspace(np.log10(float(a0)), np.log10(float(a1)), int(na))
n, t = y.shape
k = int(folds.max()) + 1
A, nc = len(alphas), gammas.shape[0]

t0 = time.perf_counter()
xs = []
for x in bands:
    sd = x.std(0, dtype=np.float64)
    xs.append(((x - x.mean(0, dtype=np.float64)) / np.where(sd > 0, sd, 1)).astype(np.float32))
kernels = [x @ x.T for x in xs]
yc = y - y.mean(0)
t_gram = time.perf_counter() - t0

best_score = np.full(t, -np.inf)
best_alpha = np.zeros(t)
best_gamma = np.zeros(t, np.int32)
t_eigh = 0.0
for c in range(nc):
    kg = sum(np.float32(g) * kb for g, kb in zip(gammas[c], kernels))
    scores = np.zeros((A, t))
    for v in range(k):
        val = folds == v
        ktt, kvt = kg[np.ix_(~val, ~val)], kg[np.ix_(val, ~val)]
        r, mu = ktt.mean(1), ktt.mean()
        ktt = ktt - r[:, None] - r[None, :] + mu
        kvt = kvt - kvt.mean(1)[:, None] - r[None, :] + mu
        te = time.perf_counter()
        lam, q = np.linalg.eigh(ktt.astype(np.float64))
        t_eigh += time.perf_counter() - te
        lam, q = np.maximum(lam, 0), q.astype(np.float32)
        yt, yv = yc[~val], yc[val]
        ym = yt.mean(0)
        left = kvt @ q  # n_v × n_t
        right = q.T @ (yt - ym)  # n_t × t
        sst = ((yv - yv.mean(0)) ** 2).sum(0)
        for a, alpha in enumerate(alphas):
            pred = (left * (1.0 / (lam + alpha)).astype(np.float32)) @ right + ym
            sse = ((yv - pred) ** 2).sum(0)
            scores[a] += np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), 0) / k
    a_best = A - 1 - np.argmax(scores[::-1], axis=0)  # ties to the larger alpha
    s_best = scores[a_best, np.arange(t)]
    better = s_best > best_score
    best_score[better], best_alpha[better], best_gamma[better] = s_best[better], alphas[a_best[better]], c
t_search = time.perf_counter() - t0 - t_gram

tr = time.perf_counter()
x_all = np.concatenate(xs, axis=1)
sizes = [x.shape[1] for x in xs]
coef = np.zeros((x_all.shape[1], t), np.float32)
for c in np.unique(best_gamma):
    cols = np.flatnonzero(best_gamma == c)
    kg = sum(np.float32(g) * kb for g, kb in zip(gammas[c], kernels))
    lam, q = np.linalg.eigh(kg.astype(np.float64))
    lam, q = np.maximum(lam, 0), q.astype(np.float32)
    dual = q @ ((q.T @ yc[:, cols]) / (lam[:, None] + best_alpha[cols][None, :])).astype(np.float32)
    w = np.repeat(gammas[c], sizes).astype(np.float32)
    coef[:, cols] = w[:, None] * (x_all.T @ dual)
t_refit = time.perf_counter() - tr
seconds = time.perf_counter() - t0

np.save(f"{out}/best_alpha.npy", best_alpha.astype(np.float32))
np.save(f"{out}/best_gamma.npy", best_gamma)
np.save(f"{out}/coef.npy", coef)
print(json.dumps({
    "seconds": round(seconds, 2), "gram": round(t_gram, 2), "search": round(t_search, 2), "eigh": round(t_eigh, 2),
    "refit": round(t_refit, 2), "refit_groups": int(len(np.unique(best_gamma))), "candidates": nc,
}))
