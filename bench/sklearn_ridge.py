"""scikit-learn's RidgeCV(alpha_per_target=True) on the .npy files the brainlatent ridge bench wrote.

Run by ts/bench/ridge.ts with Debian's python3-sklearn (/usr/bin/python3). Prints one JSON line.
alpha_per_target requires cv=None: leave-one-out GCV in float64 (ridge.md §5.1).
"""
import json
import resource
import sys
import time

import numpy as np
from sklearn.linear_model import RidgeCV

folder, n_alphas = sys.argv[1], int(sys.argv[2])
x_train = np.load(f"{folder}/x_train.npy").astype(np.float64)
y_train = np.load(f"{folder}/y_train.npy").astype(np.float64)
x_test = np.load(f"{folder}/x_test.npy").astype(np.float64)
y_test = np.load(f"{folder}/y_test.npy").astype(np.float64)
signal = np.load(f"{folder}/signal.npy").astype(bool)
alphas = np.logspace(1, 7, n_alphas)

t0 = time.perf_counter()
model = RidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=True).fit(x_train, y_train)
seconds = time.perf_counter() - t0

pred = model.predict(x_test)
sse = ((pred - y_test) ** 2).sum(0)
sst = ((y_test - y_test.mean(0)) ** 2).sum(0)
r2 = 1 - sse / sst
print(json.dumps({
    "seconds": seconds,
    "test_r2": float(r2[signal].mean()),
    "alphas": np.asarray(model.alpha_).astype(np.float32).tolist(),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
