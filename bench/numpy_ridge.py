"""Plain numpy RidgeCV with brainlatent's protocol, on the .npy files the ridge bench wrote.

The same computation as the engine's per-fold route, written the direct way: contiguous K folds;
per fold, centre with the training means, one symmetric eigendecomposition (of XᵀX when the
training rows outnumber the features, else of XXᵀ), then one GEMM per alpha for the held-out
predictions and R² per target; the best alpha per target (ties to the larger alpha); a refit on
all rows with each target's alpha. float32 like the engine, numpy's BLAS (OpenBLAS here).

Run by ts/bench/ridge.ts with Debian's python3-numpy (/usr/bin/python3). Prints one JSON line.
Arguments: folder n_alphas folds
"""
import json
import resource
import sys
import time

import numpy as np

folder, n_alphas, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x_train = np.load(f"{folder}/x_train.npy").astype(np.float32)
y_train = np.load(f"{folder}/y_train.npy").astype(np.float32)
x_test = np.load(f"{folder}/x_test.npy").astype(np.float32)
y_test = np.load(f"{folder}/y_test.npy").astype(np.float32)
signal = np.load(f"{folder}/signal.npy").astype(bool)
alphas = np.logspace(1, 7, n_alphas)
n, p = x_train.shape
t = y_train.shape[1]


def decompose(x):
    """Eigenvalues and the matrices that map targets to predictions: primal or kernel form."""
    if x.shape[0] > x.shape[1]:
        lam, q = np.linalg.eigh(x.T @ x)  # p × p
        return lam, q, "primal"
    lam, q = np.linalg.eigh(x @ x.T)  # n × n
    return lam, q, "kernel"


t0 = time.perf_counter()
scores = np.zeros((n_alphas, t))
sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]  # scikit-learn's KFold, unshuffled
bounds = np.concatenate([[0], np.cumsum(sizes)])
for v in range(k):
    val = np.zeros(n, bool)
    val[bounds[v]:bounds[v + 1]] = True
    xt, yt, xv, yv = x_train[~val], y_train[~val], x_train[val], y_train[val]
    xm, ym = xt.mean(0), yt.mean(0)
    xt, yt, xv = xt - xm, yt - ym, xv - xm
    lam, q, form = decompose(xt)
    if form == "primal":
        left = xv @ q  # n_v × p
        right = q.T @ (xt.T @ yt)  # p × t
    else:
        left = (xv @ xt.T) @ q  # n_v × n_t
        right = q.T @ yt  # n_t × t
    sst = ((yv - yv.mean(0)) ** 2).sum(0)
    for a, alpha in enumerate(alphas):
        pred = (left * (1.0 / (lam + alpha)).astype(np.float32)) @ right + ym  # one GEMM per alpha
        sse = ((yv - pred) ** 2).sum(0)
        scores[a] += np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), 0) / k
# best alpha per target, ties to the larger alpha
best = n_alphas - 1 - np.argmax(scores[::-1], axis=0)
alpha_t = alphas[best]
xm, ym = x_train.mean(0), y_train.mean(0)
xc, yc = x_train - xm, y_train - ym
lam, q, form = decompose(xc)
if form == "primal":
    z = q.T @ (xc.T @ yc)
    coef = q @ (z / (lam[:, None] + alpha_t[None, :])).astype(np.float32)
else:
    z = q.T @ yc
    coef = xc.T @ (q @ (z / (lam[:, None] + alpha_t[None, :])).astype(np.float32))
intercept = ym - xm @ coef
seconds = time.perf_counter() - t0

pred = x_test @ coef + intercept
sse = ((pred - y_test) ** 2).sum(0)
sst = ((y_test - y_test.mean(0)) ** 2).sum(0)
r2 = 1 - sse / sst
print(json.dumps({
    "seconds": seconds,
    "test_r2": float(r2[signal].mean()),
    "alphas": alpha_t.astype(np.float32).tolist(),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "form": form,
}))
