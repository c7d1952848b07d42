#!/usr/bin/python3
"""train_ref.py: the reference run of ../shared/reference/training.md (Fashion-MNIST,
eps 0.1, cnn_7layer_bn2, 6 epochs) in plain PyTorch, written from that page's
section 5 (no auto_LiRPA), so several seeds of "the same recipe in PyTorch" can be
set against the C trainer's spread of seeds.

usage: /usr/bin/python3 train_ref.py SEED [WIDTH LINEAR_SIZE]   (1 thread; prints
one line per epoch and a final line with clean and IBP-verified test error)"""
import gzip
import math
import sys
import time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
seed = int(sys.argv[1])
w = int(sys.argv[2]) if len(sys.argv) > 2 else 4
ls = int(sys.argv[3]) if len(sys.argv) > 3 else 32
EPS, EPOCHS, START, LENGTH, BATCH, LR, TOL, LAMBDA = 0.1, 6, 2, 3, 256, 5e-4, 0.5, 0.5
MILESTONES, MIN_EPS_REG = [5], 1e-6
torch.manual_seed(seed)
np.random.seed(seed)

def idx(path):
    with gzip.open(path) as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

D = "/usr/share/datasets/fashion-mnist/"
xtr = torch.tensor(idx(D + "train-images-idx3-ubyte.gz"), dtype=torch.float32).div(255).unsqueeze(1)
ytr = torch.tensor(idx(D + "train-labels-idx1-ubyte.gz").astype(np.int64))
xte = torch.tensor(idx(D + "t10k-images-idx3-ubyte.gz"), dtype=torch.float32).div(255).unsqueeze(1)
yte = torch.tensor(idx(D + "t10k-labels-idx1-ubyte.gz").astype(np.int64))

model = nn.Sequential(
    nn.Conv2d(1, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(),
    nn.Conv2d(w, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(),
    nn.Conv2d(w, 2 * w, 3, 2, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),
    nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),
    nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),
    nn.Flatten(), nn.Linear(196 * 2 * w, ls), nn.BatchNorm1d(ls), nn.ReLU(), nn.Linear(ls, 10))
# IBP init: every weight tensor with ndim > 1 except the last, N(0, (sqrt(2 pi)/fan_in)^2)
ws = [p for n, p in model.named_parameters() if "weight" in n]
for p in ws[:-1]:
    if p.ndim > 1:
        fan_in = p[0].numel()
        nn.init.normal_(p, 0, math.sqrt(2 * math.pi / fan_in ** 2))

def passes(x, y, eps, train):
    """clean logits, margin lower bounds (B x 9) and the ReLU input bounds"""
    h = x
    xl, xu = torch.clamp(x - eps, min=0), torch.clamp(x + eps, max=1)
    m, r = (xu + xl) / 2, (xu - xl) / 2
    bounds = []
    mods = list(model)
    for i, mod in enumerate(mods):
        if isinstance(mod, nn.Conv2d):
            h = mod(h)
            m = F.conv2d(m, mod.weight, mod.bias, mod.stride, mod.padding)
            r = F.conv2d(r, mod.weight.abs(), None, mod.stride, mod.padding)
        elif isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            dims = (0, 2, 3) if h.dim() == 4 else (0,)
            if train:
                mu, var = h.mean(dims), h.var(dims, unbiased=False)
                with torch.no_grad():
                    n = h.numel() / h.shape[1]
                    mod.running_mean.mul_(0.9).add_(0.1 * mu)
                    mod.running_var.mul_(0.9).add_(0.1 * var * n / (n - 1))
            else:
                mu, var = mod.running_mean, mod.running_var
            sh = (1, -1, 1, 1) if h.dim() == 4 else (1, -1)
            a = mod.weight / torch.sqrt(var + mod.eps)
            c = mod.bias - mu * a
            h = h * a.view(sh) + c.view(sh)
            m, r = m * a.view(sh) + c.view(sh), r * a.abs().view(sh)
            bounds.append((m - r, m + r))
        elif isinstance(mod, nn.ReLU):
            h = F.relu(h)
            lo, up = F.relu(m - r), F.relu(m + r)
            m, r = (up + lo) / 2, (up - lo) / 2
        elif isinstance(mod, nn.Flatten):
            h, m, r = h.flatten(1), m.flatten(1), r.flatten(1)
        elif i == len(mods) - 1:
            logits = mod(h)
            # spec e_y - e_j folded into the last layer
            Wy = mod.weight[y]                               # B x ls
            others = torch.stack([torch.cat([torch.arange(0, int(t)), torch.arange(int(t) + 1, 10)]) for t in y])
            Wc = Wy.unsqueeze(1) - mod.weight[others]        # B x 9 x ls
            bc = mod.bias[y].unsqueeze(1) - mod.bias[others]
            lb = (Wc @ m.unsqueeze(2)).squeeze(2) + bc - (Wc.abs() @ r.unsqueeze(2)).squeeze(2)
        else:
            h = mod(h)
            m, r = F.linear(m, mod.weight, mod.bias), F.linear(r, mod.weight.abs())
    tau0 = ((xu - xl) / 2).mean()
    return logits, lb, bounds, tau0

def reg_terms(bounds, tau0):
    tight = relu_t = torch.zeros(())
    for lo, up in bounds:
        c, rr = (up + lo) / 2, (up - lo) / 2
        tight = tight + F.relu(TOL - tau0 / rr.mean().clamp(min=1e-12)) / TOL
        act, inact = lo > 0, up < 0
        mean_ratio = (c * act).mean() / -(c * inact).mean()
        delta = (c - c.mean()) ** 2
        var_ratio = (delta * act).sum() / (delta * inact).sum()
        mean_ratio = torch.min(mean_ratio, 1 / mean_ratio.clamp(min=1e-12))
        var_ratio = torch.min(var_ratio, 1 / var_ratio.clamp(min=1e-12))
        t = (F.relu(TOL - mean_ratio) + F.relu(TOL - var_ratio)) / TOL
        if not torch.isnan(t) and not torch.isinf(t):
            relu_t = relu_t + t
    return tight / len(bounds), relu_t / len(bounds)

def eps_at(step, E):
    init, final = (START - 1) * E, (START + LENGTH - 1) * E
    mid = init + math.floor((final - init) * 0.25)
    if step <= init:
        return 0.0
    alpha = EPS / ((final - mid) * 4 * (mid - init) ** 3 + (mid - init) ** 4)
    if step < mid:
        return alpha * (step - init) ** 4
    q = alpha * (mid - init) ** 4
    return min(q + (EPS - q) * (step - mid) / (final - mid), EPS)

def robust_loss(lb):
    return torch.logsumexp(torch.cat([torch.zeros(lb.shape[0], 1), -lb], 1), 1).mean()

def test(eps):
    model.eval()
    ce_err = ibp_err = 0
    with torch.no_grad():
        for i in range(0, len(xte), 256):
            x, y = xte[i:i + 256], yte[i:i + 256]
            logits, lb, _, _ = passes(x, y, eps, False)
            ce_err += (logits.argmax(1) != y).sum().item()
            ibp_err += (lb < 0).any(1).sum().item()
    return ce_err / len(xte), ibp_err / len(xte)

opt = torch.optim.Adam(model.parameters(), lr=LR)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=MILESTONES, gamma=0.2)
E = (len(xtr) + BATCH - 1) // BATCH
step = 0
for epoch in range(1, EPOCHS + 1):
    model.train()
    t0 = time.time()
    perm = torch.randperm(len(xtr))
    reg_on = epoch <= START + LENGTH - 1
    nerr = nrob = 0
    for b in range(E):
        ids = perm[b * BATCH:(b + 1) * BATCH]
        x, y = xtr[ids], ytr[ids]
        eps = eps_at(step, E)
        step += 1
        robust = eps >= 1e-50
        box = eps if robust else (MIN_EPS_REG if reg_on else 0.0)
        logits, lb, bounds, tau0 = passes(x, y, box, True)
        loss = robust_loss(lb) if robust else F.cross_entropy(logits, y)
        if reg_on:
            tight, relu_t = reg_terms(bounds, tau0)
            loss = loss + LAMBDA * (1 - eps / EPS) * (tight + relu_t)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        nerr += (logits.argmax(1) != y).sum().item()
        nrob += (lb < 0).any(1).sum().item()
    sched.step()
    ce_err, ibp_err = test(eps)
    print(f"epoch {epoch} eps {eps:.5f} train err {nerr / len(xtr):.4f} train ibp {nrob / len(xtr):.4f}"
          f" test err {ce_err:.4f} test ibp {ibp_err:.4f} ({time.time() - t0:.0f} s)", flush=True)
print(f"final seed {seed}: clean err {100 * ce_err:.2f} % IBP-verified err {100 * ibp_err:.2f} %")
