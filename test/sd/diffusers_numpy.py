"""diffusers' img2img loop and schedulers, transcribed a second time in numpy (float64), for a toy
U-Net eps = tanh(0.5 x + 0.001 t) + 0.1 mean(cond row). A known-answer source independent of the
engine and of the TypeScript reference: reads a JSON list of jobs on stdin, prints their final latents.
Written from diffusers' scheduling_*.py and pipeline_stable_diffusion_img2img.py (get_timesteps,
set_begin_index, add_noise, scale_model_input, step)."""
import json
import sys

import numpy as np



def solve(job):
    name = job["scheduler"]
    N = job["steps"]
    cfg_in = job["config"]
    alpha_indexed = name in ("ddim", "pndm", "ddpm")
    cfg = dict(
        num_train_timesteps=1000,
        beta_start=0.00085 if name == "heun" else 0.0001,
        beta_end=0.012 if name == "heun" else 0.02,
        beta_schedule="linear",
        set_alpha_to_one=name == "ddim",
        steps_offset=0,
        timestep_spacing="leading" if alpha_indexed else "linspace",
        clip_sample=name in ("ddim", "ddpm"),
        use_karras_sigmas=False,
    )
    cfg.update({k: v for k, v in cfg_in.items() if k in cfg})
    T = cfg["num_train_timesteps"]
    if cfg["beta_schedule"] == "scaled_linear":
        betas = np.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, T) ** 2
    else:
        betas = np.linspace(cfg["beta_start"], cfg["beta_end"], T)
    ac = np.cumprod(1.0 - betas)
    sig_all = ((1 - ac) / ac) ** 0.5
    log_sig = np.log(sig_all)
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)


    def sigma_to_t(sigma):
        ls = np.log(np.maximum(sigma, 1e-10))
        dists = ls - log_sig[:, None]
        low = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=log_sig.shape[0] - 2)
        lo, hi = log_sig[low], log_sig[low + 1]
        w = np.clip((lo - ls) / (lo - hi), 0, 1)
        return ((1 - w) * low + w * (low + 1)).reshape(np.shape(sigma))


    def karras(smin, smax, n):
        ramp = np.linspace(0, 1, n)
        return (smax ** (1 / 7) + ramp * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7


    def spaced_int(n):
        sp = cfg["timestep_spacing"]
        if sp == "linspace":
            return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
        if sp == "leading":
            return (np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64) + cfg["steps_offset"]
        return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1


    def spaced_float(n):
        sp = cfg["timestep_spacing"]
        if sp == "linspace":
            return np.linspace(0, T - 1, n, dtype=np.float32)[::-1].astype(np.float64)
        if sp == "leading":
            return (np.arange(0, n) * (T // n)).round()[::-1].astype(np.float32).astype(np.float64) + cfg["steps_offset"]
        return (np.arange(T, 0, -T / n)).round().astype(np.float32).astype(np.float64) - 1


    def vp(s):
        a = 1 / np.sqrt(s * s + 1)
        return a, s * a, np.log(a) - np.log(s * a)


    # ---- timesteps and sigmas per class
    order = 2 if name == "heun" else 1
    sigmas = None
    if alpha_indexed:
        ts = spaced_int(N)
        if name == "pndm":
            asc = ts[::-1]
            ts = np.concatenate([asc[:-1], asc[-2:-1], asc[-1:]])[::-1]
    elif name in ("euler", "euler-ancestral", "lms", "heun"):
        ts = spaced_float(N)
        sg = np.interp(ts, np.arange(T), sig_all)
        if cfg["use_karras_sigmas"] and name != "euler-ancestral":
            sg = karras(sg[-1], sg[0], N)
            ts = f32(np.array([sigma_to_t(s) for s in sg]))
        sigmas = f32(np.concatenate([sg, [0.0]]))
        if name == "heun":
            sigmas = np.concatenate([sigmas[:1], np.repeat(sigmas[1:-1], 2), sigmas[-1:]])
            ts = f32(np.concatenate([ts[:1], np.repeat(ts[1:], 2)]))
    else:
        sp = cfg["timestep_spacing"]
        if sp == "linspace":
            ts = np.linspace(0, T - 1, N + 1).round()[::-1][:-1].astype(np.int64)
        elif sp == "leading":
            ts = (np.arange(0, N + 1) * (T // (N + 1))).round()[::-1][:-1].astype(np.int64) + cfg["steps_offset"]
        else:
            ts = np.arange(T, 0, -T / N).round().astype(np.int64) - 1
        if cfg["use_karras_sigmas"]:
            sg = karras(sig_all[0], sig_all[-1], N)
            ts = np.array([sigma_to_t(s) for s in sg]).round().astype(np.int64)
        else:
            sg = np.interp(ts, np.arange(T), sig_all)
        sigmas = f32(np.concatenate([sg, [0.0]]))

    init = min(int(N * job["strength"]), N)
    t_start = max(N - init, 0)
    begin = t_start * order
    run = ts[begin:]

    shape = job["shape"]
    B = shape[0]
    n = int(np.prod(shape[1:]))
    z = np.array(job["z"], dtype=np.float64).reshape(B, n)
    noise0 = np.array(job["noise"], dtype=np.float64).reshape(B, n)
    step_noise = np.array(job["stepNoise"], dtype=np.float64).reshape(len(run), B, n) if job.get("stepNoise") else None
    g = job["guidance"]
    cm = np.array(job["condMean"])[:, None]
    um = np.array(job["uncondMean"])[:, None]


    def unet(x_in, t):
        tf = float(np.float32(t))
        c = np.tanh(0.5 * f32(x_in) + 0.001 * tf) + 0.1 * cm
        if g <= 1:
            return f32(c)
        u = np.tanh(0.5 * f32(x_in) + 0.001 * tf) + 0.1 * um
        return f32(u) + g * (f32(c) - f32(u))


    # ---- add_noise at the first timestep
    if alpha_indexed:
        a = ac[int(run[0])]
        x = np.sqrt(a) * z + np.sqrt(1 - a) * noise0
    elif sigmas is not None and name not in ("dpmpp2m", "dpmpp2m-sde", "unipc"):
        x = z + sigmas[begin] * noise0
    else:
        a, s, _ = vp(sigmas[begin])
        x = a * z + s * noise0

    state = dict(ets=[], counter=0, cur=None, derivs=[], prev_d=None, dt=None, sample=None, mo=[None, None], lon=0, last=None, this_order=1)
    final_alpha = 1.0 if cfg["set_alpha_to_one"] else ac[0]
    for k, t in enumerate(run):
        i = begin + k  # step_index of the sigma-indexed classes
        if name in ("euler", "euler-ancestral", "lms", "heun"):
            x_in = x / np.sqrt(sigmas[i] ** 2 + 1)
        else:
            x_in = x
        e = unet(x_in, t)
        zk = step_noise[k] if step_noise is not None else None
        if name == "ddim":
            prev = int(t) - T // N
            at, ap = ac[int(t)], ac[prev] if prev >= 0 else final_alpha
            x0 = (x - np.sqrt(1 - at) * e) / np.sqrt(at)
            if cfg["clip_sample"]:
                x0 = np.clip(x0, -1, 1)
            sd = job.get("eta", 0) * np.sqrt((1 - ap) / (1 - at) * (1 - at / ap))
            x = np.sqrt(ap) * x0 + np.sqrt(1 - ap - sd**2) * e + (sd * zk if sd > 0 else 0)
        elif name == "ddpm":
            idx = k + begin
            prev = int(ts[idx + 1]) if idx + 1 < len(ts) else -1
            at, ap = ac[int(t)], ac[prev] if prev >= 0 else 1.0
            ca = at / ap
            x0 = (x - np.sqrt(1 - at) * e) / np.sqrt(at)
            if cfg["clip_sample"]:
                x0 = np.clip(x0, -1, 1)
            x = (np.sqrt(ap) * (1 - ca) / (1 - at)) * x0 + (np.sqrt(ca) * (1 - ap) / (1 - at)) * x
            if t > 0:
                x = x + np.sqrt(max((1 - ap) / (1 - at) * (1 - ca), 1e-20)) * zk
        elif name == "pndm":
            r = T // N
            tt, pt = int(t), int(t) - r
            if state["counter"] != 1:
                state["ets"] = state["ets"][-3:] + [e]
            else:
                pt, tt = tt, tt + r
            ets, sample = state["ets"], x
            if len(ets) == 1 and state["counter"] == 0:
                mo = e
                state["cur"] = x
            elif len(ets) == 1 and state["counter"] == 1:
                mo = (e + ets[-1]) / 2
                sample = state["cur"]
            elif len(ets) == 2:
                mo = (3 * ets[-1] - ets[-2]) / 2
            elif len(ets) == 3:
                mo = (23 * ets[-1] - 16 * ets[-2] + 5 * ets[-3]) / 12
            else:
                mo = (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4]) / 24
            at, ap = ac[tt], ac[pt] if pt >= 0 else final_alpha
            x = (ap / at) ** 0.5 * sample - (ap - at) * mo / (at * (1 - ap) ** 0.5 + (at * (1 - at) * ap) ** 0.5)
            state["counter"] += 1
        elif name in ("euler", "euler-ancestral"):
            s, sn = sigmas[i], sigmas[i + 1]
            d = (x - (x - s * e)) / s
            if name == "euler":
                x = x + d * (sn - s)
            else:
                up = (sn**2 * (s**2 - sn**2) / s**2) ** 0.5
                down = (sn**2 - up**2) ** 0.5
                x = x + d * (down - s) + zk * up
        elif name == "lms":
            s = sigmas[i]
            state["derivs"] = (state["derivs"] + [(x - (x - s * e)) / s])[-4:]
            o = min(i + 1, 4)

            def coeff(cur):
                # the basis polynomial is a cubic at most: integrate it exactly with numpy's polynomial tools
                poly = np.poly1d([1.0])
                for m in range(o):
                    if m != cur:
                        poly = poly * np.poly1d([1.0, -sigmas[i - m]]) / (sigmas[i - cur] - sigmas[i - m])
                P = poly.integ()
                return P(sigmas[i + 1]) - P(sigmas[i])

            cs = [coeff(cur) for cur in range(o)]
            x = x + sum(c * d for c, d in zip(cs, reversed(state["derivs"])))
        elif name == "heun":
            if state["dt"] is None:
                s, sn = sigmas[i], sigmas[i + 1]
                d = (x - (x - s * e)) / s
                state.update(prev_d=d, dt=sn - s, sample=x)
                x = x + d * (sn - s)
            else:
                sn = sigmas[i]
                d = ((x - (x - sn * e)) / sn + state["prev_d"]) / 2
                x = state["sample"] + d * state["dt"]
                state.update(prev_d=None, dt=None, sample=None)
        elif name in ("dpmpp2m", "dpmpp2m-sde"):
            a_s, s_s, l_s = vp(sigmas[i])
            m = (x - s_s * e) / a_s
            state["mo"] = [state["mo"][1], m]
            if sigmas[i + 1] == 0:
                x = m
            else:
                a_t, s_t, l_t = vp(sigmas[i + 1])
                h = l_t - l_s
                last = i == len(ts) - 1
                D = m
                if not (state["lon"] < 1 or last):
                    _, _, l_1 = vp(sigmas[i - 1])
                    D = m + 0.5 * (1 / ((l_s - l_1) / h)) * (m - state["mo"][0])
                if name == "dpmpp2m":
                    x = (s_t / s_s) * x - a_t * (np.exp(-h) - 1) * D
                else:
                    x = (s_t / s_s * np.exp(-h)) * x + a_t * (1 - np.exp(-2 * h)) * D + s_t * np.sqrt(1 - np.exp(-2 * h)) * zk
            state["lon"] = min(state["lon"] + 1, 2)
        elif name == "unipc":

            def bvec(hh, h1, Bh, order_):
                hpk, fact, b = h1 / hh - 1, 1, []
                for q in range(1, order_ + 1):
                    b.append(hpk * fact / Bh)
                    fact *= q + 1
                    hpk = hpk / hh - 1 / fact
                return b

            a_i, s_i, l_i = vp(sigmas[i])
            mt = (x - s_i * e) / a_i
            if i > 0 and state["last"] is not None:
                m0 = state["mo"][1]
                a_t, s_t, l_t = vp(sigmas[i])
                _, s_0, l_0 = vp(sigmas[i - 1])
                h = l_t - l_0
                hh = -h
                h1 = np.expm1(hh)
                Bh = np.expm1(hh)
                xt_ = s_t / s_0 * state["last"] - a_t * h1 * m0
                if state["this_order"] == 1:
                    x = xt_ - a_t * Bh * (0.5 * (mt - m0))
                else:
                    _, _, l_m = vp(sigmas[i - 2])
                    r1 = (l_m - l_0) / h
                    rho = np.linalg.solve(np.array([[1.0, 1.0], [r1, 1.0]]), np.array(bvec(hh, h1, Bh, 2)))
                    x = xt_ - a_t * Bh * (rho[0] * (state["mo"][0] - m0) / r1 + rho[1] * (mt - m0))
            state["mo"] = [state["mo"][1], mt]
            state["this_order"] = min(min(2, len(ts) - i), state["lon"] + 1)
            state["last"] = x
            if sigmas[i + 1] == 0:
                x = mt
            else:
                a_t, s_t, l_t = vp(sigmas[i + 1])
                h = l_t - l_i
                h1 = np.expm1(-h)
                xt_ = s_t / s_i * x - a_t * h1 * mt
                if state["this_order"] == 1:
                    x = xt_
                else:
                    _, _, l_m = vp(sigmas[i - 1])
                    r1 = (l_m - l_i) / h
                    x = xt_ - a_t * np.expm1(-h) * 0.5 * (state["mo"][0] - mt) / r1
            state["lon"] = min(state["lon"] + 1, 2)
        x = f32(x)
    return {"timesteps": [float(v) for v in run], "latents": x.reshape(-1).tolist()}


jobs = json.load(sys.stdin)
json.dump([solve(j) for j in jobs], sys.stdout)
