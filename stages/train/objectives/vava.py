"""VAVA loss (Liu et al., CVPR 2022), as documented in docs/method.md (#total-loss to #modes).

Per pair (X [N,d], Y [M,d]):
    L_all = gamma * (C(X) + C(Y)) + align_weight * L_VAVA + inter_weight * L_inter
L_VAVA is the transport cost of an order-preserving OT plan between X and Y, each padded with a
virtual (background) frame; C is the intra-video contrastive term; L_inter contrasts each frame's
best and worst match. Everything is vectorised over the pairs of a batch and over frames.

`mode="paper"` picks inter-video matches from the plan T and centres the optimality prior on the
nearest neighbour (column m+2, 1-based augmented); `mode="reference"` reproduces the official TF code
(matches from U = K*D~, centre m+1). `port_inter_bug` reproduces the AE2 port's detached L_inter.

Prior shapes (docs/method.md#prior-shapes): each bump is a function of the signed offset s between a column's
normalised position j/M' and a target position (the diagonal i/N', or the nearest neighbour c_i/M'),
scaled so that its value at s = 0 is the GMM peak g(0) = 1/(sigma*sqrt(2*pi)). The virtual entries keep
the constant P_v = g(1.5*thr/mid) of docs/method.md#priors in every shape, so the background weight stays comparable.
  * gmm: g(|s|/mid), the paper's GMM (|s|/mid is a distance in frames).
  * flat_top: Eq. 1 with margin `flat_top_eta` in the same frame units: constant for |s|/mid <= eta,
    Gaussian tails beyond; eta = 0 is exactly gmm.
  * beta: Eq. 2 on x = (1+s)/2 in (0,1) with `beta_alpha`, `beta_beta` (alpha = beta: symmetric bump
    of standard deviation 1/sqrt(2*alpha+1) video lengths; the default 25 is about the gmm width at T=20).
`learned_variance` replaces sigma_prior by a per-pair width from a small MLP (`PriorWidthHead`).

The balanced variant (docs/method.md#balanced-variant) is a set of options whose defaults keep the official
behaviour: `cost: normalised` (per-feature cost, unscaled lambdas, L_VAVA = sum T*D~, align_weight 1),
`unit_embeddings` (cost on embeddings rescaled to norm sqrt(d)), `virtual: partial` (virtual marginals of
mass `background_fraction`), `phi_schedule: budget` (phi linear from 0.999 to `phi_end` over `total_steps`)
and `log_grad_norms` (per-term gradient norms in the logged components).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vava.core.validation import FLAG, checked, integer, invalid, number, one_of, optional, validate
from vava.stages.train.config import TrainConfig
from vava.stages.train.objectives.alignment import column_marginal_error, log_sinkhorn, pairwise_sq_dists
from vava.stages.train.objectives.base import Objective, PairBatch, detached

LOG_KERNEL_MIN = math.log(1e-15)
LOG_KERNEL_MAX = math.log(1e20)
# AE2 calls cross_entropy(logits=[0, 1], soft target=[d+, d-]): weights -log_softmax([0, 1]).
_PT_INTER_WEIGHTS = (math.log1p(math.e), math.log1p(math.e) - 1.0)

MODES = ("paper", "reference")
PRIORS = ("gmm", "flat_top", "beta")
COSTS = ("official", "normalised")
VIRTUAL_MARGINALS = ("uniform", "partial")
PHI_SCHEDULES = ("official", "budget")
PHI_START = 0.999  # phi at step 0 in both schedules


@dataclass(frozen=True)
class VavaConfig:
    """Every knob of the VAVA loss (docs/method.md#options); defaults are the official code's."""

    mode: str = checked(one_of(*MODES), "paper")  # "paper" | "reference" (docs/method.md#modes)
    sinkhorn_iters: int = checked(integer(0), 20)  # loop iterations; the plan gets sinkhorn_iters + 1 (v, u) updates
    lambda1: float = checked(number(at_least=0), 1.0)  # IDM weight, scaled by (N + M)
    lambda2: float = checked(number(above=0), 0.1)     # KL weight, scaled by N*M/4
    sigma_prior: float = checked(number(above=0), 2.0)  # width of the prior bumps, in frames
    virtual_distance: float = checked(number(at_least=0), 5.0)  # sets the virtual prior / IDM constants
    zeta: float = checked(number(at_least=0), 0.5)     # cost of the virtual row and column
    clamp_log_kernel: bool = checked(FLAG, True)       # clamp log K to [ln 1e-15, ln 1e20]
    window: int = checked(integer(0), 15)              # intra term: |i - j| > window are negatives
    margin: float = checked(number(at_least=0), 2.0)   # intra term margin (per-dimension mean units)
    gamma: float = checked(number(at_least=0), 0.5)    # weight of C(X) + C(Y)
    temperature: float = checked(number(above=0), 0.5)  # inter term temperature
    inter_weight: float = checked(number(at_least=0), 1e-4)
    align_weight: float | None = checked(optional(number(at_least=0)), None)  # None: 1/(N*M)
    both_orders: bool = checked(FLAG, False)           # average loss(X, Y) and loss(Y, X)
    prior: str = checked(one_of(*PRIORS), "gmm")       # "gmm" | "flat_top" | "beta"
    flat_top_eta: float = checked(number(at_least=0), 1.0)  # flat-top margin, in frames
    beta_alpha: float = checked(number(above=0), 25.0)
    beta_beta: float = checked(number(above=0), 25.0)
    learned_variance: bool = checked(FLAG, False)      # per-pair prior width from PriorWidthHead (gmm / flat_top)
    embedding_dim: int = checked(integer(1), 128)      # input size of PriorWidthHead (used only with learned_variance)
    port_inter_bug: bool = checked(FLAG, False)        # AE2's detached L_inter value; regression tests only
    # the balanced variant (docs/method.md#balanced-variant); these defaults are the official behaviour
    cost: str = checked(one_of(*COSTS), "official")    # normalised: per-feature D, unscaled lambdas, sum T*D~
    unit_embeddings: bool = checked(FLAG, False)       # transport cost on embeddings rescaled to norm sqrt(d)
    virtual: str = checked(one_of(*VIRTUAL_MARGINALS), "uniform")  # partial: virtual marginals of mass rho
    background_fraction: float = checked(number(at_least=0, below=1), 0.3)  # rho of virtual: partial
    phi_schedule: str = checked(one_of(*PHI_SCHEDULES), "official")  # budget: linear to phi_end at total_steps
    phi_end: float = checked(number(at_least=0.001, at_most=0.999), 0.5)
    total_steps: int | None = checked(optional(integer(1)), None)  # budget length; training fills it from steps
    log_grad_norms: bool = checked(FLAG, False)        # log grad_intra, grad_align, grad_inter, grad_ratio

    def __post_init__(self) -> None:
        validate(self)
        if self.learned_variance and self.prior == "beta":
            raise invalid(self, "learned_variance", "must be false with prior 'beta' (the Beta prior has no width "
                                                    "sigma to learn), got True")
        if self.phi_schedule == "budget" and self.total_steps is None:
            raise invalid(self, "total_steps", "must be set with phi_schedule 'budget' (`vava train` fills it "
                                               "from steps), got None")


def phi_schedule(step: int) -> float:
    """Mixing weight of the diagonal prior: clip(0.999 ** floor(sqrt(step + 1)), 0.001, 0.999)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return min(max(0.999 ** math.isqrt(step + 1), 0.001), 0.999)


def phi_at(step: int, config: VavaConfig) -> float:
    """phi at `step` under `config.phi_schedule`; budget: linear from 0.999 at 0 to phi_end at total_steps, then held."""
    if config.phi_schedule == "official":
        return phi_schedule(step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return PHI_START + (config.phi_end - PHI_START) * min(step / config.total_steps, 1.0)


def align_weight(n: int, m: int, config: VavaConfig) -> float:
    """Weight of L_VAVA: config.align_weight, else 1/(N*M) (official cost) or 1 (normalised cost)."""
    if config.align_weight is not None:
        return config.align_weight
    return 1.0 / (n * m) if config.cost == "official" else 1.0


def lambdas(n: int, m: int, config: VavaConfig) -> tuple[float, float]:
    """(lambda1', lambda2'): scaled by the lengths under the official cost, as given under the normalised one."""
    if config.cost == "official":
        return config.lambda1 * (n + m), config.lambda2 * n * m / 4
    return config.lambda1, config.lambda2


def virtual_log_marginals(n: int, m: int, config: VavaConfig, like: Tensor) -> tuple[Tensor, Tensor] | None:
    """log a [N'], log b [M'] of the partial virtual frame (None: uniform marginals).

    The virtual entry carries rho and each real frame 1/N (or 1/M), both divided by 1 + rho.
    """
    if config.virtual == "uniform":
        return None
    rho = config.background_fraction

    def side(length: int) -> Tensor:
        mass = torch.full((length + 1,), 1.0 / length, dtype=torch.float64)
        mass[0] = rho
        return (mass / (1 + rho)).log().to(like)
    return side(n), side(m)


def transport_cost(x: Tensor, y: Tensor, config: VavaConfig) -> Tensor:
    """Ground cost D [B, N, M]: sums of squares (official) or per-feature means (normalised), on embeddings
    rescaled to norm sqrt(d) when `unit_embeddings`."""
    d = x.shape[-1]
    if config.unit_embeddings:
        x, y = (math.sqrt(d) * F.normalize(v, dim=-1) for v in (x, y))
    dist = pairwise_sq_dists(x, y)
    return dist if config.cost == "official" else dist / d


def unmatched_share(plan: Tensor) -> tuple[Tensor, Tensor]:
    """Share of each real frame's plan mass on the virtual frame: plan [..., N', M'] -> rows [..., N], cols [..., M].

    rows[i] = T[i+1, 0] / sum_j T[i+1, :] (real frame i of X), cols likewise down the columns.
    """
    rows = plan[..., 1:, 0] / plan[..., 1:, :].sum(dim=-1)
    cols = plan[..., 0, 1:] / plan[..., :, 1:].sum(dim=-2)
    return rows, cols


class _Grid(NamedTuple):
    diag_offset: Tensor  # [N', M'] j/M' - i/N' (float64, 1-based augmented indices)
    columns: Tensor      # [M'] 1..M'
    virtual: Tensor      # [N', M'] bool: virtual row or column, except (1, 1)
    mid: float           # sqrt(1/N'^2 + 1/M'^2)


@functools.lru_cache(maxsize=64)
def _grid(n: int, m: int, device: torch.device) -> _Grid:
    rows = torch.arange(1, n + 2, dtype=torch.float64, device=device)
    columns = torch.arange(1, m + 2, dtype=torch.float64, device=device)
    virtual = (rows[:, None] == 1) ^ (columns[None, :] == 1)
    mid = math.sqrt((n + 1) ** -2 + (m + 1) ** -2)
    return _Grid(columns[None, :] / (m + 1) - rows[:, None] / (n + 1), columns, virtual, mid)


@functools.lru_cache(maxsize=64)
def _intra_grid(n: int, window: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Weights 1/((i-j)^2 + 1) and the negative mask |i - j| > window, both [N, N]."""
    gap = torch.arange(n, device=device)
    gap = (gap[:, None] - gap[None, :]).abs()
    return 1.0 / (gap.to(dtype) ** 2 + 1), gap > window


def _log_gauss(frames: Tensor | float, sigma: Tensor) -> Tensor:
    """log g(frames) for the centred Gaussian g of width sigma."""
    return -torch.log(sigma * math.sqrt(2 * math.pi)) - frames ** 2 / (2 * sigma ** 2)


def _log_bump(offset: Tensor, sigma: Tensor, mid: float, config: VavaConfig) -> Tensor:
    """log of the prior shape at signed offset `offset` (normalised positions); log g(0) at 0."""
    if config.prior == "beta":
        return (_log_gauss(0.0, sigma) + (config.beta_alpha - 1) * torch.log1p(offset)
                + (config.beta_beta - 1) * torch.log1p(-offset))
    frames = offset.abs() / mid  # distance to the target, in frames
    if config.prior == "flat_top":
        eta = config.flat_top_eta
        return _log_gauss(frames.clamp_min(eta), sigma) + eta ** 2 / (2 * sigma ** 2)
    return _log_gauss(frames, sigma)


def prior_and_idm(nearest: Tensor, m: int, phi: float, config: VavaConfig,
                  sigma: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """log P and S (lambda1' folded in), both [B, N', M'] float64, from nearest neighbours [B, N].

    sigma: per-pair prior width [B] (default: config.sigma_prior).
    """
    batch, n = nearest.shape
    grid = _grid(n, m, nearest.device)
    if sigma is None:
        sigma = torch.full((batch,), config.sigma_prior, dtype=torch.float64, device=nearest.device)
    sigma = sigma.to(torch.float64)[:, None, None]
    first = torch.ones(batch, 1, dtype=torch.float64, device=nearest.device)
    centre = torch.cat([first, nearest.to(torch.float64) + (2 if config.mode == "paper" else 1)], dim=1)
    nn_offset = (grid.columns[None, None, :] - centre[:, :, None]) / (m + 1)
    log_p = torch.logaddexp(math.log(phi) + _log_bump(grid.diag_offset, sigma, grid.mid, config),
                            math.log1p(-phi) + _log_bump(nn_offset, sigma, grid.mid, config))
    virtual_offset = 1.5 * 2 * config.virtual_distance / (n + m + 2)  # 1.5 * thr
    log_p = torch.where(grid.virtual, _log_gauss(virtual_offset / grid.mid, sigma), log_p)
    lambda1 = lambdas(n, m, config)[0]
    idm = lambda1 * (phi / (grid.diag_offset ** 2 + 1) + (1 - phi) / (nn_offset ** 2 + 1))
    idm = torch.where(grid.virtual, lambda1 / (virtual_offset ** 2 + 1), idm)
    return log_p, idm


def intra_contrastive(x: Tensor, window: int, margin: float) -> Tensor:
    """C(X) (docs/method.md#intra-video-term) for x [B, N, d] -> [B]."""
    n, d = x.shape[-2:]
    dist = pairwise_sq_dists(x, x) / d
    weight, negative = _intra_grid(n, window, x.device, x.dtype)
    return torch.where(negative, (margin - dist).clamp_min(0), weight * dist).mean(dim=(-2, -1))


def _match_distance(x: Tensor, y: Tensor, columns: Tensor, rows: Tensor) -> Tensor:
    """mean (x_i - y_columns(i))^2 + mean (y_j - x_rows(j))^2 over frames and features -> [B]."""
    d = x.shape[-1]
    y_matched = torch.gather(y, 1, columns[..., None].expand(-1, -1, d))
    x_matched = torch.gather(x, 1, rows[..., None].expand(-1, -1, d))
    return (x - y_matched).pow(2).mean(dim=(-2, -1)) + (y - x_matched).pow(2).mean(dim=(-2, -1))


def _inter_terms(x: Tensor, y: Tensor, selection: Tensor, config: VavaConfig) -> tuple[Tensor, Tensor, Tensor]:
    """(d+, d-, L_inter), each [B], from the real-block selection scores [B, N, M]."""
    d_pos = _match_distance(x, y, selection.argmax(-1), selection.argmax(-2)) / config.temperature
    d_neg = _match_distance(x, y, selection.argmin(-1), selection.argmin(-2)) / config.temperature
    if config.port_inter_bug:
        return d_pos, d_neg, (_PT_INTER_WEIGHTS[0] * d_pos + _PT_INTER_WEIGHTS[1] * d_neg).detach()
    return d_pos, d_neg, F.softplus(d_pos - d_neg)


def vava_pair_terms(x: Tensor, y: Tensor, step: int, config: VavaConfig = VavaConfig(),
                    sigma: Tensor | None = None) -> dict[str, Tensor]:
    """All per-pair quantities for X [N, d], Y [M, d] (or batches [B, N, d], [B, M, d]).

    Returns align (L_VAVA), intra_x, intra_y (C), d_pos, d_neg, inter (L_inter), total (L_all),
    kernel_clamped (fraction of log K outside the clamp bounds), marginal_error (largest column-sum
    error of the plan), plan (T [N', M']) and kernel (K after the clamp [N', M']). Inputs below
    float32 are cast up, and autocast is off inside, so the OT stays in float32 or float64.
    """
    if x.dim() == 2:
        terms = vava_pair_terms(x[None], y[None], step, config, None if sigma is None else sigma[None])
        return {name: value[0] for name, value in terms.items()}
    with torch.autocast(x.device.type, enabled=False):
        dtype = torch.promote_types(x.dtype, torch.float32)
        x, y = x.to(dtype), y.to(dtype)
        n, m = x.shape[1], y.shape[1]
        phi = phi_at(step, config)
        dist = transport_cost(x, y, config)
        log_p, idm = prior_and_idm(dist.detach().argmin(-1), m, phi, config, sigma)
        dist_aug = F.pad(dist, (1, 0, 1, 0), value=config.zeta)
        log_kernel = log_p.to(dtype) + (idm.to(dtype) - dist_aug) / lambdas(n, m, config)[1]
        with torch.no_grad():
            outside = (log_kernel < LOG_KERNEL_MIN) | (log_kernel > LOG_KERNEL_MAX)
            kernel_clamped = outside.to(dtype).mean(dim=(-2, -1))
        if config.clamp_log_kernel:
            log_kernel = log_kernel.clamp(LOG_KERNEL_MIN, LOG_KERNEL_MAX)
        log_a, log_b = virtual_log_marginals(n, m, config, log_kernel) or (None, None)
        log_plan = log_sinkhorn(log_kernel, config.sinkhorn_iters + 1, log_a, log_b)
        plan = log_plan.exp()
        align = (plan * dist_aug).sum(dim=(-2, -1))
        if config.cost == "official":
            align = align / ((n + 1) * (m + 1))
        with torch.no_grad():
            kernel = log_kernel.exp()
            selection = log_plan[:, 1:, 1:] if config.mode == "paper" else kernel[:, 1:, 1:] * dist
        d_pos, d_neg, inter = _inter_terms(x, y, selection, config)
        intra_x = intra_contrastive(x, config.window, config.margin)
        intra_y = intra_contrastive(y, config.window, config.margin)
        total = config.gamma * (intra_x + intra_y) + align_weight(n, m, config) * align + config.inter_weight * inter
    return {"align": align, "intra_x": intra_x, "intra_y": intra_y, "d_pos": d_pos, "d_neg": d_neg,
            "inter": inter, "total": total, "kernel_clamped": kernel_clamped,
            "marginal_error": column_marginal_error(log_plan.detach(), log_b), "plan": plan, "kernel": kernel}


class PriorWidthHead(nn.Module):
    """Learned prior width (supplement Table 7b, "Learned"): an MLP on the two mean embeddings.

    sigma = sigma_prior * 4 ** tanh(h), so it stays within [sigma_prior/4, 4*sigma_prior]; the last layer
    starts at zero (sigma = sigma_prior). The input is detached: the head adapts the prior and is
    trained through L_VAVA only, without giving the embedder a path through the width.
    """

    def __init__(self, dim: int, sigma_prior: float, hidden: int = 64) -> None:
        super().__init__()
        self.sigma_prior = sigma_prior
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x [B, N, d], y [B, M, d] -> sigma [B]."""
        features = torch.cat([x.mean(dim=-2), y.mean(dim=-2)], dim=-1).detach()
        h = self.mlp(features.to(self.mlp[0].weight.dtype)).squeeze(-1)
        return self.sigma_prior * 4.0 ** torch.tanh(h)


class VavaLoss(Objective):
    """Mean of L_all over the pairs (embeddings[:, 0], embeddings[:, 1]) of a PairBatch.

    Logged components (batch means, unweighted): align (L_VAVA), intra (C(X) + C(Y)), inter (L_inter),
    d_pos, d_neg, phi, kernel_clamped, marginal_error, sigma with learned_variance, and with log_grad_norms
    (when the embeddings require grad) grad_intra, grad_align, grad_inter and grad_ratio.
    """

    name: ClassVar[str] = "vava"
    config_class: ClassVar[type] = VavaConfig

    def __init__(self, config: VavaConfig | None = None) -> None:
        super().__init__(config)
        self.width_head = (PriorWidthHead(self.config.embedding_dim, self.config.sigma_prior)
                           if self.config.learned_variance else None)

    @classmethod
    def derive(cls, config: TrainConfig) -> dict[str, Any]:
        """A budget phi schedule runs over the training budget: `total_steps = steps` unless set. Other runs
        leave it unset, so their resolved config does not change with `steps` (a resumable change)."""
        options = dict(config.loss)
        if options.get("phi_schedule") == "budget":
            options.setdefault("total_steps", config.steps)
        return options

    def _terms(self, x: Tensor, y: Tensor, step: int) -> dict[str, Tensor]:
        if self.width_head is not None and x.shape[-1] != self.config.embedding_dim:
            raise ValueError(f"embedding_dim is {self.config.embedding_dim} but the embeddings have "
                             f"{x.shape[-1]} features")
        sigma = None if self.width_head is None else self.width_head(x, y)
        terms = {name: value for name, value in vava_pair_terms(x, y, step, self.config, sigma).items()
                 if name not in ("plan", "kernel")}
        if sigma is not None:
            terms["sigma"] = sigma
        return terms

    def forward(self, batch: PairBatch) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch.embeddings[:, 0], batch.embeddings[:, 1]
        terms = self._terms(x, y, batch.step)
        if self.config.both_orders:
            reverse = self._terms(y, x, batch.step)
            terms = {name: (value + reverse[name]) / 2 for name, value in terms.items()}
        components = {name: value for name, value in terms.items() if name not in ("intra_x", "intra_y", "total")}
        components["intra"] = terms["intra_x"] + terms["intra_y"]
        components["phi"] = torch.tensor(phi_at(batch.step, self.config))
        if self.config.log_grad_norms and batch.embeddings.requires_grad:
            components.update(self._grad_norms(terms, batch.embeddings))
        return terms["total"].mean(), detached(components)

    def _grad_norms(self, terms: dict[str, Tensor], embeddings: Tensor) -> dict[str, Tensor]:
        """L2 norms of the gradients of the weighted terms of the batch loss w.r.t. the embeddings, and
        grad_ratio = grad_align / grad_intra."""
        frames = embeddings.shape[-2]
        weighted = {"grad_intra": self.config.gamma * (terms["intra_x"] + terms["intra_y"]),
                    "grad_align": align_weight(frames, frames, self.config) * terms["align"],
                    "grad_inter": self.config.inter_weight * terms["inter"]}
        norms = {}
        for name, term in weighted.items():
            if term.requires_grad:
                (grad,) = torch.autograd.grad(term.mean(), embeddings, retain_graph=True)
                norms[name] = grad.norm()
            else:  # a detached term (port_inter_bug) adds no gradient
                norms[name] = embeddings.new_zeros(())
        norms["grad_ratio"] = norms["grad_align"] / norms["grad_intra"]
        return norms


__all__ = ["PriorWidthHead", "VavaConfig", "VavaLoss", "align_weight", "intra_contrastive", "lambdas", "phi_at",
           "phi_schedule", "prior_and_idm", "transport_cost", "unmatched_share", "vava_pair_terms",
           "virtual_log_marginals"]
