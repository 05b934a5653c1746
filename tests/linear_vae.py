"""A linear VAE trained to its optimum in a second: shared by the theory and β-sweep tests."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def fit_linear_vae(x: torch.Tensor, sigma2: float, beta: float, latent: int, steps: int = 600,
                   lr: float = 3e-2) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) on x (N, P) of a linear VAE (nn.Linear encoder to (mu, logvar), nn.Linear decoder,
    fixed Gaussian variance sigma2) trained full-batch with Adam and a cosine decay, seed 0.

    The ELBO's reconstruction term is taken in closed form for a linear decoder,
    E_q ||x - W z - b||^2 = ||x - W mu - b||^2 + sum_j sigma_j^2 ||W_j||^2: the same objective without
    Monte Carlo noise, so Adam converges in a few hundred steps. One torch thread (tiny matrices: two
    contend on a busy machine, measured 5x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        enc, dec = nn.Linear(x.shape[1], 2 * latent).double(), nn.Linear(latent, x.shape[1]).double()
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)  # a small last step: Adam settles
        for _ in range(steps):
            mu, lv = enc(x).chunk(2, 1)
            rec = (((x - dec(mu)) ** 2).sum(1) + lv.exp() @ (dec.weight ** 2).sum(0)) / (2 * sigma2)
            kl = 0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1)
            loss = (rec + beta * kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            mu, lv = enc(x).chunk(2, 1)
        return mu.numpy(), lv.numpy()
    finally:
        torch.set_num_threads(threads)
