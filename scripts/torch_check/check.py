#!/usr/bin/python3
"""check.py: recompute one training step of the trainer in PyTorch (float64;
float32 with CHECK_FLOAT32=1)
from the files step_dump.c wrote, and compare loss terms, margin bounds and the
gradient of every parameter tensor. The network is cnn_7layer_bn2 (width and
linear size from the command line); the recipe is that of
../shared/reference/training.md section 5, written out here from its text.

usage: /usr/bin/python3 check.py DIR [WIDTH LINEAR_SIZE]
(needs Debian's python3-torch; a development check, not part of the tests)"""
import sys
import numpy as np
import torch
import torch.nn.functional as F

import os
DT = torch.float32 if os.environ.get("CHECK_FLOAT32") else torch.float64
torch.set_default_dtype(DT)
NP = np.float32 if DT == torch.float32 else np.float64
d = sys.argv[1]
w = int(sys.argv[2]) if len(sys.argv) > 2 else 4
ls = int(sys.argv[3]) if len(sys.argv) > 3 else 32
tol = 0.5

# (kind, shape...) in the trainer's parameter order
convs = [(1, w, 1), (w, w, 1), (w, 2 * w, 2), (2 * w, 2 * w, 1), (2 * w, 2 * w, 1)]
flat = (28 // 2) ** 2 * 2 * w
raw = np.fromfile(f"{d}/params.bin", dtype=np.float32)
pos = 0
def take(*shape):
    global pos
    n = int(np.prod(shape))
    t = torch.tensor(raw[pos:pos + n].astype(NP).reshape(shape), requires_grad=True)
    pos += n
    return t
layers = []  # (name, params)
for i, (ci, co, s) in enumerate(convs):
    layers.append(("conv", take(co, ci, 3, 3), take(co), s))
    layers.append(("bn", take(co), take(co)))
layers.append(("linear", take(ls, flat), take(ls)))
layers.append(("bn", take(ls), take(ls)))
layers.append(("last", take(10, ls), take(10)))
assert pos == raw.size, (pos, raw.size)
params = [p for l in layers for p in l[1:] if isinstance(p, torch.Tensor)]

B = np.fromfile(f"{d}/y.bin", dtype=np.int32).size
x = torch.tensor(np.fromfile(f"{d}/x.bin", dtype=np.float32).astype(NP).reshape(B, 1, 28, 28))
y = torch.tensor(np.fromfile(f"{d}/y.bin", dtype=np.int32).astype(np.int64))
cases = [l.split() for l in open(f"{d}/cases.txt")]

def bn_stats(h):
    dims = (0, 2, 3) if h.dim() == 4 else (0,)
    return h.mean(dims), h.var(dims, unbiased=False)

def bshape(v, h):
    return v.view(1, -1, 1, 1) if h.dim() == 4 else v.view(1, -1)

def step(eps, reg_w, natural):
    # clean pass, training-mode BN
    h, stats = x, []
    for l in layers:
        if l[0] == "conv":
            h = F.conv2d(h, l[1], l[2], stride=l[3], padding=1)
        elif l[0] == "bn":
            mu, var = bn_stats(h)
            stats.append((mu, var))
            h = (h - bshape(mu, h)) / torch.sqrt(bshape(var, h) + 1e-5) * bshape(l[1], h) + bshape(l[2], h)
            h = F.relu(h)
        elif l[0] == "linear":
            h = h.flatten(1) @ l[1].T + l[2]
        else:
            logits = h @ l[1].T + l[2]
    ce = F.cross_entropy(logits, y)
    # interval pass in centre/radius form, BN with the clean batch's statistics
    xl, xu = torch.clamp(x - eps, min=0), torch.clamp(x + eps, max=1)
    m, r = (xu + xl) / 2, (xu - xl) / 2
    tau0 = r.mean()
    k, bounds = 0, []
    C = torch.zeros(B, 9, 10)
    for b in range(B):
        j = 0
        for c in range(10):
            if c != y[b]:
                C[b, j, y[b]] = 1
                C[b, j, c] = -1
                j += 1
    for l in layers:
        if l[0] == "conv":
            m = F.conv2d(m, l[1], l[2], stride=l[3], padding=1)
            r = F.conv2d(r, l[1].abs(), None, stride=l[3], padding=1)
        elif l[0] == "bn":
            mu, var = stats[k]
            k += 1
            a = l[1] / torch.sqrt(var + 1e-5)
            c0 = l[2] - mu * a
            m, r = m * bshape(a, m) + bshape(c0, m), r * bshape(a.abs(), r)
            lo, up = m - r, m + r
            bounds.append((lo, up))
            lo, up = F.relu(lo), F.relu(up)
            m, r = (up + lo) / 2, (up - lo) / 2
        elif l[0] == "linear":
            m, r = m.flatten(1), r.flatten(1)
            m, r = m @ l[1].T + l[2], r @ l[1].abs().T
        else:
            Wc = C @ l[1]                       # B x 9 x ls
            bc = C @ l[2]                       # B x 9
            lb = (Wc @ m.unsqueeze(2)).squeeze(2) + bc - (Wc.abs() @ r.unsqueeze(2)).squeeze(2)
    robust = torch.logsumexp(torch.cat([torch.zeros(B, 1), -lb], 1), 1).mean()
    tight = relu_t = torch.zeros(())
    for lo, up in bounds:
        c, rr = (up + lo) / 2, (up - lo) / 2
        tight = tight + F.relu(tol - tau0 / rr.mean().clamp(min=1e-12)) / tol
        act, inact = (lo > 0).to(DT), (up < 0).to(DT)
        mean_ratio = (c * act).mean() / -(c * inact).mean()
        delta = (c - c.mean()) ** 2
        var_ratio = (delta * act).sum() / (delta * inact).sum()
        mean_ratio = torch.min(mean_ratio, 1 / mean_ratio.clamp(min=1e-12))
        var_ratio = torch.min(var_ratio, 1 / var_ratio.clamp(min=1e-12))
        t = (F.relu(tol - mean_ratio) + F.relu(tol - var_ratio)) / tol
        if torch.isfinite(t):
            relu_t = relu_t + t
    tight, relu_t = tight / len(bounds), relu_t / len(bounds)
    loss = (ce if natural else robust) + reg_w * (tight + relu_t)
    g = torch.autograd.grad(loss, params)
    return loss, ce, robust, tight, relu_t, lb, g

npar = raw.size
for kcase, row in enumerate(cases):
    eps, reg_w, natural = float(row[0]), float(row[1]), int(row[2])
    loss, ce, robust, tight, relu_t, lb, g = step(eps, reg_w, natural)
    ours = [float(v) for v in row[3:8]]
    print(f"case {kcase}: eps {eps} reg {reg_w} natural {natural}")
    for name, a, b in zip(["loss", "ce", "robust", "tight", "relu"], ours,
                          [loss, ce, robust, tight, relu_t]):
        print(f"  {name:7s} ours {a:.7g}  torch {float(b):.7g}")
    dump = np.fromfile(f"{d}/case_{kcase}.bin", dtype=np.float32)
    mlb = dump[:B * 9].reshape(B, 9).astype(np.float64)
    print(f"  margins: max |diff| {np.abs(mlb - lb.detach().numpy()).max():.3g}"
          f" (scale {np.abs(lb.detach().numpy()).max():.3g})")
    gd = dump[B * 9:]
    off = 0
    names = []
    for l in layers:
        for p in l[1:]:
            if isinstance(p, torch.Tensor):
                names.append(l[0])
    for nm, p, gt in zip(names, params, g):
        n = p.numel()
        a, b = gd[off:off + n].astype(np.float64), gt.detach().numpy().ravel()
        off += n
        rel = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
        flag = "  <--" if rel > 1e-3 else ""
        print(f"  grad {nm:6s} {tuple(p.shape)!s:18s} |g| {np.linalg.norm(b):.4g} rel err {rel:.2e}{flag}")
    print(f"  total grad norm torch {float(torch.sqrt(sum((t ** 2).sum() for t in g))):.5g}"
          f" ours {np.linalg.norm(gd):.5g}")
