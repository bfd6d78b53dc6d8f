"""Training losses of the density network.

``mse``: the original loss, squared error on 10 x density plus an L1 loss on each crop's count.

``dmcount``: a distribution-matching loss in the manner of DM-Count (Wang et al., NeurIPS 2020),
written from the paper's description:

* a count loss, ``|sum(z) - N|`` per crop (N annotated heads inside it);
* an optimal-transport loss between the normalised predicted density ``z / |z|`` over the stride-8
  cells and the normalised point map (mass ``1 / N`` on every head), with the squared distance in
  pixels between a cell centre and a head as the transport cost. The transport plan comes from
  entropic Sinkhorn iterations in the log domain; the loss's gradient with respect to the
  prediction is that of ``<z / |z|, g>`` where ``g`` is the dual potential on the cells (held
  constant), and its value is the transport cost ``<P, C>`` of the plan;
* a total-variation loss ``0.5 * |z / |z| - t / |t|| * N`` against the binned point map ``t``.

``zip``: a zero-inflated Poisson likelihood per stride-8 cell, in the manner of ZIP (Ma et al.,
2025), written from the paper's description. Each cell's head count k is drawn from
``pi * [k = 0] + (1 - pi) * Poisson(k; lambda)``: most cells are empty, and ``pi`` says a cell is
background (bags, tripods, walls) rather than a crowd cell that happens to hold no head. The loss
is the negative log-likelihood of the binned heads, plus the DM-Count loss above on the mean
``(1 - pi) * lambda`` (the density the exported network outputs).

Example:
    >>> pred = torch.rand(2, 1, 6, 8, requires_grad=True)
    >>> pts = [np.array([[12.0, 20.0]], np.float32), np.zeros((0, 2), np.float32)]
    >>> loss, parts = dm_count_loss(pred, pts)
    >>> sorted(parts)
    ['count', 'ot', 'tv']
"""

from __future__ import annotations

import numpy as np
import torch

from crowdwatch.training.data import SPACING_NEIGHBOURS, head_spacing
from crowdwatch.training.model import mean_density

STRIDE = 8


def mse_density_loss(pred: torch.Tensor, target: torch.Tensor, count_weight: float) -> torch.Tensor:
    """Squared error on 10 x density summed over cells, plus an L1 loss on each crop's count."""
    squared = ((pred - target) * 10.0).pow(2).sum(dim=(1, 2, 3)).mean() / 100.0
    count = (pred.sum(dim=(1, 2, 3)) - target.sum(dim=(1, 2, 3))).abs().mean()
    return squared + count_weight * count


def cell_centres(cells_h: int, cells_w: int, stride: int = STRIDE) -> torch.Tensor:
    """(cells_h * cells_w, 2) x, y pixel coordinates of the stride-``stride`` cell centres."""
    ys = (torch.arange(cells_h, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(cells_w, dtype=torch.float32) + 0.5) * stride
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


def squared_distances(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, M) squared pixel distances between N points and M cell centres."""
    return (points[:, None, :] - centres[None, :, :]).pow(2).sum(dim=2)


@torch.no_grad()
def sinkhorn_log(
    a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, reg: float, iterations: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entropic optimal transport between weights ``a`` (N,) and ``b`` (M,), log-domain Sinkhorn.

    Solves ``min <P, C> + reg * KL(P | a x b)`` over plans with marginals ``a`` and ``b``.
    The regularisation is annealed geometrically from the largest cost down to ``reg`` over the
    first ``iterations - 3`` iterations (epsilon scaling), then held at ``reg``: a few tens of
    iterations then give the potentials that plain Sinkhorn needs hundreds for at a small ``reg``.
    Returns the dual potentials ``f`` (N,), ``g`` (M,) and the plan ``P`` (N, M). Cells with zero
    weight in ``b`` still get a finite potential (the soft c-transform of ``f``), which is what
    says how much moving mass onto them would cost.
    """
    log_a = torch.log(a)
    log_b = torch.log(b)  # -inf where b is 0: those cells take no part in f
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    start = max(float(cost.max()), reg)
    annealed = max(1, iterations - 3)
    regs = [start * (reg / start) ** (k / max(1, annealed - 1)) for k in range(annealed)]
    regs += [reg] * (iterations - annealed)
    for r in regs:
        f = -r * torch.logsumexp(log_b[None, :] + (g[None, :] - cost) / r, dim=1)
        g = -r * torch.logsumexp(log_a[:, None] + (f[:, None] - cost) / r, dim=0)
    plan = torch.exp(log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - cost) / reg)
    return f, g, plan


def ot_loss(
    density: torch.Tensor,
    points: torch.Tensor,
    reg: float = 10.0,
    iterations: int = 30,
    stride: int = STRIDE,
) -> torch.Tensor:
    """Optimal-transport loss of one (cells_h, cells_w) density against (N, 2) head points.

    The value is the transport cost (squared pixels per unit of mass) of the entropic plan between
    the normalised density and the normalised points; the gradient with respect to ``density`` is
    ``(g - <g, z / |z|>) / |z|`` for the cells' dual potential ``g``. Zero when there are no
    points or no predicted mass (the count loss handles those).
    """
    total = density.sum()
    if len(points) == 0 or float(total.detach()) <= 1e-8:
        return density.sum() * 0.0
    cells_h, cells_w = density.shape
    centres = cell_centres(cells_h, cells_w, stride).to(density.device)
    cost = squared_distances(points.to(density.device).float(), centres)
    normed = density.reshape(-1) / total
    a = torch.full((len(points),), 1.0 / len(points), device=density.device)
    _, g, plan = sinkhorn_log(a, normed.detach().clamp_min(0), cost, reg, iterations)
    g = g - g.mean()  # the potential is defined up to a constant; keep it centred
    surrogate = (normed * g).sum()
    value = (plan * cost).sum()
    return value + surrogate - surrogate.detach()


def binned_points(
    points: np.ndarray, cells_h: int, cells_w: int, stride: int = STRIDE
) -> np.ndarray:
    """Heads counted per stride-8 cell (points outside the crop are dropped)."""
    grid = np.zeros((cells_h, cells_w), np.float32)
    if len(points):
        cx = np.floor(points[:, 0] / stride).astype(int)
        cy = np.floor(points[:, 1] / stride).astype(int)
        inside = (cx >= 0) & (cx < cells_w) & (cy >= 0) & (cy < cells_h)
        np.add.at(grid, (cy[inside], cx[inside]), 1.0)
    return grid


def inside_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Which of the (N, 2) points fall in an H x W crop (the same rule as the density target)."""
    cx = np.floor(points[:, 0] / STRIDE)
    cy = np.floor(points[:, 1] / STRIDE)
    return (cx >= 0) & (cx < width // STRIDE) & (cy >= 0) & (cy < height // STRIDE)


def points_inside(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (N, 2) points that fall in an H x W crop (the same rule as the density target)."""
    if not len(points):
        return np.zeros((0, 2), np.float32)
    return points[inside_mask(points, height, width)].astype(np.float32)


def dm_count_loss(
    pred: torch.Tensor,
    points: list[np.ndarray],
    count_weight: float = 1.0,
    ot_weight: float = 0.1,
    tv_weight: float = 0.01,
    reg: float = 10.0,
    iterations: int = 30,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DM-Count style loss of a (B, 1, h, w) predicted density against each crop's head points.

    ``points[i]`` are the (N_i, 2) x, y pixel positions of crop i's heads (those outside the crop
    are ignored). Returns the loss and its parts (count, ot, tv; batch means) for logging.
    """
    batch, _, cells_h, cells_w = pred.shape
    counts, ots, tvs = [], [], []
    for i in range(batch):
        pts = np.asarray(points[i], np.float32).reshape(-1, 2)
        pts = points_inside(pts, cells_h * STRIDE, cells_w * STRIDE)
        density = pred[i, 0]
        total = density.sum()
        counts.append((total - len(pts)).abs())
        if len(pts):
            # Sinkhorn is most of this loss's cost: skip it when its weight is zero.
            if ot_weight:
                ots.append(ot_loss(density, torch.from_numpy(pts), reg, iterations))
            else:
                ots.append(total * 0.0)
            target = torch.from_numpy(binned_points(pts, cells_h, cells_w)).to(pred.device)
            normed = density / (total + 1e-6)
            tvs.append(0.5 * (normed - target / len(pts)).abs().sum() * len(pts))
        else:
            ots.append(total * 0.0)
            tvs.append(total * 0.0)
    count = torch.stack(counts).mean()
    ot = torch.stack(ots).mean()
    tv = torch.stack(tvs).mean()
    loss = count_weight * count + ot_weight * ot + tv_weight * tv
    return loss, {
        "count": float(count.detach()),
        "ot": float(ot.detach()),
        "tv": float(tv.detach()),
    }


def bayesian_loss(
    pred: torch.Tensor,
    points: list[np.ndarray],
    sigma: float = 8.0,
    background_distance: float = 64.0,
    count_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Bayesian loss with a background term (Ma et al., ICCV 2019), from the paper's description.

    Each cell m is shared among the heads by the posterior ``p(head n | cell m)`` of a Gaussian
    likelihood (``sigma`` pixels) around every head, plus a background "head" whose distance to a
    cell is ``background_distance`` minus the cell's distance to its nearest head (so cells more
    than half of ``background_distance`` away from every head belong mostly to the background).
    The expected count of head n is ``sum_m p(n | m) z_m``; the loss sums ``|1 - E[c_n]|`` over
    heads and ``|E[c_background]|`` (the background must receive no mass), per crop, averaged over
    the batch, plus ``count_weight`` x the L1 count error of each crop.
    """
    batch, _, cells_h, cells_w = pred.shape
    centres = cell_centres(cells_h, cells_w).to(pred.device)
    heads, backs, counts = [], [], []
    for i in range(batch):
        pts = np.asarray(points[i], np.float32).reshape(-1, 2)
        pts = points_inside(pts, cells_h * STRIDE, cells_w * STRIDE)
        density = pred[i, 0].reshape(-1)
        total = density.sum()
        counts.append((total - len(pts)).abs())
        if not len(pts):
            heads.append(total * 0.0)
            backs.append(total)
            continue
        dist2 = squared_distances(torch.from_numpy(pts).to(pred.device), centres)  # (N, M)
        nearest = dist2.min(dim=0).values.sqrt()
        background = (background_distance - nearest).clamp_min(0.0).pow(2)  # (M,)
        logits = -torch.cat([dist2, background[None, :]], dim=0) / (2.0 * sigma**2)
        posterior = torch.softmax(logits, dim=0)  # (N + 1, M); no gradient needed through it
        expected = posterior @ density  # (N + 1,)
        heads.append((1.0 - expected[:-1]).abs().sum())
        backs.append(expected[-1].abs())
    head = torch.stack(heads).mean()
    back = torch.stack(backs).mean()
    count = torch.stack(counts).mean()
    loss = head + back + count_weight * count
    return loss, {
        "heads": float(head.detach()),
        "background": float(back.detach()),
        "count": float(count.detach()),
    }


def zero_inflated_poisson_nll(
    rate: torch.Tensor, zero_probability: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Negative log-likelihood of integer ``counts`` under ZIP(pi, lambda), summed per crop.

    ``-log(pi + (1 - pi) e^-lambda)`` where k = 0, and
    ``-log(1 - pi) + lambda - k log(lambda) + log(k!)`` where k > 0 (nats; all (B, 1, h, w)).
    Returns the (B,) per-crop sums.
    """
    eps = 1e-6
    pi = zero_probability.clamp(eps, 1.0 - eps)
    lam = rate.clamp_min(eps)
    empty = -torch.log(pi + (1.0 - pi) * torch.exp(-rate))
    occupied = -torch.log1p(-pi) + lam - counts * torch.log(lam) + torch.lgamma(counts + 1.0)
    return torch.where(counts > 0, occupied, empty).sum(dim=(1, 2, 3))


def zip_loss(
    rate: torch.Tensor,
    zero_probability: torch.Tensor,
    points: list[np.ndarray],
    nll_weight: float = 1.0,
    **dm_count: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """ZIP likelihood of each crop's binned heads plus the DM-Count loss on the mean density.

    ``rate`` and ``zero_probability`` are (B, 1, h, w); ``points[i]`` are crop i's (N_i, 2) head
    positions in pixels; ``dm_count`` passes ``dm_count_loss``'s weights. The likelihood is
    summed per crop (nats), so its gradient per cell, ``1 - k / lambda`` on occupied cells and
    about ``1 - pi`` on empty ones, is on the scale of the count loss's (1 per cell).
    """
    batch, _, cells_h, cells_w = rate.shape
    counts = np.stack(
        [
            binned_points(np.asarray(pts, np.float32).reshape(-1, 2), cells_h, cells_w)
            for pts in points
        ]
    )
    counts_t = torch.from_numpy(counts[:, None]).to(rate.device)
    nll = zero_inflated_poisson_nll(rate, zero_probability, counts_t).mean()
    dm, parts = dm_count_loss(mean_density(rate, zero_probability), points, **dm_count)
    return nll_weight * nll + dm, {"nll": float(nll.detach()), **parts}


def spacing_loss(
    log_spacing: torch.Tensor, points: list[np.ndarray], *, height: int, width: int
) -> torch.Tensor:
    """Mean absolute error, in log pixels, of the predicted head spacing at each head.

    ``log_spacing`` (B, 1, h, w) covers crops of ``height`` x ``width`` pixels; it is read
    bilinearly at each head inside its crop and compared with ``log(head_spacing)``, computed
    over all of that crop's points (crop pixels). Crops with too few heads add nothing; with
    none in the batch the loss is 0.
    """
    errors = []
    for index, crop_points in enumerate(points[: log_spacing.shape[0]]):
        if len(crop_points) <= SPACING_NEIGHBOURS:
            continue
        spacing = head_spacing(crop_points)
        inside = inside_mask(crop_points, height, width)
        if not inside.any():
            continue
        xy = torch.from_numpy(crop_points[inside]).to(log_spacing)
        # grid_sample's [-1, 1] spans the crop's outer pixel edges (align_corners=False).
        grid = torch.stack([xy[:, 0] / width * 2 - 1, xy[:, 1] / height * 2 - 1], dim=-1)
        predicted = torch.nn.functional.grid_sample(
            log_spacing[index : index + 1], grid.view(1, 1, -1, 2), align_corners=False
        ).view(-1)
        target = torch.from_numpy(np.log(np.maximum(spacing[inside], 1.0))).to(log_spacing)
        errors.append((predicted - target).abs())
    if not errors:
        return log_spacing.sum() * 0.0
    return torch.cat(errors).mean()
