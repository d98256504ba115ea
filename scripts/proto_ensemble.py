"""Research prototype of the ensemble method (pure Python, the C++ core's streaming semantics), scored
on NAB. Its DEFAULT is the configuration of ``Method::ensemble``; the other options are the variants
tried (see benchmarks/README.md). ``PYTHONPATH=python python scripts/proto_ensemble.py [key=value ...]``"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from anomaly_detection.evaluation import NabCorpus, score_all_profiles

SQ2 = math.sqrt(2.0)


class EW:
    """Exponentially weighted mean/var with alpha = 2/(n+1), warm-started as a plain average."""

    def __init__(self, n):
        self.n = n
        self.k = 0
        self.m = 0.0
        self.v = 0.0

    def push(self, x):
        self.k += 1
        a = max(1.0 / self.k, 2.0 / (self.n + 1))
        d = x - self.m
        self.m += a * d
        self.v = (1 - a) * (self.v + a * d * d)

    def mean(self):
        return self.m

    def std(self):
        return math.sqrt(self.v) if self.v > 0 else 0.0


class Roll:
    """Rolling mean/var over the last n values."""

    def __init__(self, n):
        self.n = n
        self.buf = [0.0] * n
        self.i = 0
        self.k = 0
        self.s1 = 0.0
        self.s2 = 0.0

    def push(self, x):
        if self.k == self.n:
            old = self.buf[self.i]
            self.s1 -= old
            self.s2 -= old * old
        else:
            self.k += 1
        self.buf[self.i] = x
        self.i = (self.i + 1) % self.n
        self.s1 += x
        self.s2 += x * x

    def mean(self):
        return self.s1 / self.k if self.k else 0.0

    def std(self):
        if self.k < 2:
            return 0.0
        m = self.s1 / self.k
        v = self.s2 / self.k - m * m
        return math.sqrt(v) if v > 0 else 0.0


def logq(z):
    """-log10 of the upper tail probability of a standard normal at z."""
    q = 0.5 * math.erfc(z / SQ2)
    q = max(q, 1e-300)
    return -math.log10(q)


ARG = []


def run(values, ts, P):
    ARG.clear()
    W = P["W"]
    L = P["L"]
    S = P["S"]
    n = len(values)
    out = np.zeros(n)
    dt = np.median(np.diff(ts[: min(n, 50)]))
    period = round(86400.0 / dt) if P["season"] and dt > 0 and 86400.0 / dt >= 4 else 0
    feats = P["feats"]
    R_ = EW if P["eww"] else Roll
    rv = R_(W)
    rd = R_(W)
    rs = R_(W)
    rw_ = R_(W)
    hist = []
    # likelihood per feature
    short = {f: Roll(S) for f in feats}
    long_ = {f: (EW(L) if P["ewl"] else Roll(L)) for f in feats}
    prev = None
    lo = math.inf
    hi = -math.inf
    recent = []
    hold = 0
    hmax = {f: [] for f in feats}
    res = None
    trans = {}
    ctxq = []
    K = P["K"]
    for t in range(n):
        x = values[t]
        z = {}
        sv = rv.std()
        fl = 1e-9 * max(1.0, abs(rv.mean())) + P["eps"] * (hi - lo if hi > lo else 0.0)
        z["val"] = abs(x - rv.mean()) / max(sv, fl) if rv.k >= 2 else 0.0
        d = x - prev if prev is not None else 0.0
        z["diff"] = abs(d - rd.mean()) / max(rd.std(), fl) if rd.k >= 2 else 0.0
        r = rw = None
        z["seas"] = z["week"] = 0.0
        for name, lag, roll in (("seas", period, rs), ("week", 7 * period if "week" in feats else 0, rw_)):
            if lag and t >= max(lag, 50):
                res_ = x - hist[t - lag]
                z[name] = abs(res_ - roll.mean()) / max(roll.std(), fl) if roll.k >= 2 else 0.0
                if name == "seas":
                    r = res_
                else:
                    rw = res_
        if "spatial" in feats:
            span = hi - lo
            z["spatial"] = (
                1.0 if t > 10 and span > 0 and (x > hi + 0.05 * span or x < lo - 0.05 * span) else 0.0
            )
        if "markov" in feats:
            if t < P["learn"]:
                z["markov"] = 0.0
            else:
                if res is None:
                    h = np.array(hist)
                    base = np.quantile(h, 0.01) if P.get("relbins", True) else 0.0
                    res = max(
                        (np.quantile(h, 0.99) - np.quantile(h, 0.01)) / P["bins"],
                        1e-12 * max(1, abs(h.mean())),
                    )
                    if P.get("pretrain", True):
                        for v in hist:
                            bb = math.floor((v - base) / res)
                            if ctxq:
                                cc = trans.setdefault((ctxq[-1],), {})
                                cc[bb] = cc.get(bb, 0) + 1
                            ctxq.append(bb)
                b = math.floor((x - base) / res)
                ctx = tuple(ctxq[-P["order"] :])
                c = trans.get(ctx)
                if not ctxq:
                    z["markov"] = 0.0
                elif c:
                    tot = sum(c.values())
                    hit = c.get(b, 0) + P["nb"] * (c.get(b - 1, 0) + c.get(b + 1, 0))
                    z["markov"] = 1.0 - min(hit / tot, 1.0)
                else:
                    z["markov"] = 1.0
                if ctxq:
                    trans.setdefault(ctx, {})
                    trans[ctx][b] = trans[ctx].get(b, 0) + 1
                ctxq.append(b)
        best = 0.0
        arg = None
        ready = {
            "val": rv.k >= 2,
            "diff": rd.k >= 2,
            "seas": r is not None and rs.k >= 2,
            "week": True,
            "spatial": t > 10,
            "markov": t >= P["learn"],
        }
        for f in feats:
            if P.get("ready", True) and not ready[f]:
                continue
            zf = min(z[f], P["cap"])
            if P["transform"] == "sat" and f not in ("markov", "spatial"):
                zf = 1.0 - math.exp(-zf / 3.0)
            short[f].push(zf)
            a = short[f].mean()
            lg = long_[f]
            if lg.k >= P["learn"]:
                sd = max(lg.std(), P["minsd"])
                lz = (a - lg.mean()) / sd
                s = logq(lz) if lz > 0 else 0.0
                if P["rd"] < 1.0:
                    hq = hmax[f]
                    if hq and a <= max(hq):
                        s *= P["rd"]
            else:
                s = 0.0
            lg.push(a)
            if P["rd"] < 1.0:
                hq = hmax[f]
                hq.append(a)
                if len(hq) > P["R"]:
                    hq.pop(0)
            if P["comb"] == "max":
                if s > best:
                    best = s
                    arg = f
            else:
                best += s / len(feats) if P["comb"] == "mean" else s
        score = min(best / P["scale"], 1.0)
        # suppression: keep only a new record over the last K scores
        if K:
            m = max(recent) if recent else 0.0
            rep = score if score > m else score * P["damp"]
            recent.append(score)
            if len(recent) > K:
                recent.pop(0)
            score = rep
        if P["H"]:
            if hold > 0:
                hold -= 1
                score = min(score, P["T"] * 0.9)
            elif score >= P["T"]:
                hold = P["H"]
        out[t] = score
        ARG.append(arg)
        rv.push(x)
        if prev is not None:
            rd.push(d)
        if r is not None:
            rs.push(r)
        if "week" in feats and rw is not None:
            rw_.push(rw)
        hist.append(x)
        prev = x
        lo = min(lo, x)
        hi = max(hi, x)
    return out


DEFAULT = {
    "W": 400,
    "L": 2000,
    "S": 5,
    "season": True,
    "feats": ("val", "diff", "seas", "spatial", "markov"),
    "cap": 20.0,
    "transform": "sat",
    "eww": True,
    "rd": 0.5,
    "R": 300,
    "H": 100,
    "K": 300,
    "learn": 300,
    "bins": 50,
    "order": 1,
    "nb": 0.5,
    "minsd": 0.02,
    "damp": 0.5,
    "scale": 10.0,
    "ewl": False,
    "T": 0.5,
    "comb": "max",
    "eps": 0.0,
}

if __name__ == "__main__":
    corpus = NabCorpus.load("/work/shared/data/nab")
    P = dict(DEFAULT)
    for arg in sys.argv[1:]:
        k, v = arg.split("=")
        P[k] = eval(v)
    t0 = time.time()
    scores = {}
    for f in corpus:
        ts = f.timestamps.astype("datetime64[s]").astype(np.float64)
        scores[f.name] = run(list(map(float, f.values)), ts, P)
    res = score_all_profiles(corpus, scores)
    print(
        {k: round(v.score, 2) for k, v in res.items()},
        "thr",
        res["standard"].threshold,
        "TP/FN/FP",
        res["standard"].tp,
        res["standard"].fn,
        res["standard"].fp,
        f"{time.time() - t0:.1f}s",
    )
    if "-v" in sys.argv[0:1] or P.get("verbose"):
        print(res["standard"].table())
