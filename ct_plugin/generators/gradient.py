"""Batched gradient-based counterfactual search: Generic (Wachter) and ECCCo.

The whole batch moves as one tensor. Each step is one forward and one backward pass
of the model with respect to the inputs; converged rows stop moving.
"""

from __future__ import annotations

import dataclasses

import torch

from ct_plugin.constraints import SearchConstraints
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult
from ct_plugin.generators.steps import clip_rows, normalise_rows
from ct_plugin.torch_utils import frozen


def check_non_negative(name: str, value: float, allow_zero: bool = True) -> float:
    """``value`` as a float, refused unless >= 0 (> 0 without ``allow_zero``) and not NaN."""
    value = float(value)
    if not (value >= 0 if allow_zero else value > 0) or value != value:
        bound = ">= 0" if allow_zero else "> 0"
        raise CTPluginError(f"{name} must be {bound}, got {value}")
    return value


def check_search_settings(tau: float, max_steps: int, epsilon: float) -> None:
    """Raise a clear error for impossible search settings."""
    if not 0.0 < tau <= 1.0:
        raise CTPluginError(f"tau (decision threshold) must lie in (0, 1], got {tau}")
    if int(max_steps) != max_steps or max_steps < 0:
        raise CTPluginError(f"max_steps must be a non-negative integer, got {max_steps}")
    check_non_negative("epsilon", epsilon)


def energy_decay_factor(step: int, max_steps: int) -> float:
    """The reference's decaying multiplier of the energy penalty: ``a * (b + t)^(-0.9)``.

    ``b = round(T / 25)``, ``a = b / 10`` and ``t = step + 1`` (steps taken so far + 1), as
    CounterfactualExplanations.jl computes it (METHOD.md section 2). For ``T = 30``: ``b = 1``,
    ``a = 0.1``, so the factor is 0.054 at the first step and 0.0045 at the 30th; for ``T < 13``,
    ``b = 0`` and the energy term vanishes. Julia's ``round`` rounds half to even, like Python's.
    """
    b = round(max_steps / 25)
    if b == 0:
        return 0.0
    return (b / 10) * (b + step + 1) ** -0.9


#: named sets of ECCCo settings: ``"project"`` is this project's historical default, ``"reference"``
#: the settings the reference's experiments ran with (METHOD.md section 2)
ECCCO_PRESETS: dict[str, dict[str, object]] = {
    "project": {"step_size": 0.25, "energy_reg": 0.1, "energy_decay": False, "onehot_steps": "relaxed"},
    "reference": {"step_size": 0.1, "energy_reg": 1e-3, "energy_decay": True, "onehot_steps": "projected"},
}
ONEHOT_STEPS = ("relaxed", "projected", "continuous")
"""One-hot groups: ``relaxed`` (free steps; judged, nascent and returned as their argmax), ``projected`` (set to
their argmax after every step: the reference's test-time search) or ``continuous`` (ignored, fractional levels
kept: the reference's in-training search, whose data it builds without the categorical groups)."""


class GradientSearch(CounterfactualGenerator):
    """Gradient descent on x' minimising yloss + lambda_cost * ||x' - x||_1 + lambda_energy * E(x', y+) (+ ridge).

    With ``lambda_energy = 0`` this is the Generic (Wachter et al.) generator; with a positive
    energy weight it is ECCCo without the conformal penalty (docs/method.md, "The search inside training"). The energy
    is E(x, y+) = -logit_{y+}(x). Steps are plain gradient steps of ``step_size`` (as the reference's
    Flux ``Descent``; its experiments ran step 0.1, this class defaults to 0.25, the paper's text).

    Three ways to shape a step (all off by default; training and the paper protocol use none):

    * ``clip_grad`` clips each row's gradient to that L-inf norm, so no feature moves more than
      ``step_size * clip_grad`` standard deviations in one step. Without it, one step on the gradient of
      a confident model (large logits, ``lambda_energy`` 5) can overshoot the decision boundary by
      several standard deviations and land on the domain bounds; see docs/results.md.
    * ``normalise_grad`` scales each row's gradient, over the features that can still move its way, to
      L-inf norm 1 (:func:`normalise_rows`): the steepest feature moves exactly ``step_size`` sd per step,
      whatever the model's steepness, so a flat model still gets an answer and a steep one cannot jump.
    * ``sparse_steps`` s moves only the features pulled at least s times as hard as the steepest: the
      L1 cost grows only where a change buys the most (1: one feature at a time).

    ``ct-plugin explain`` searches with ``normalise_grad`` and ``sparse_steps`` by default
    (docs/recourse_defaults.md gives the evidence).
    """

    name = "generic"

    def __init__(
        self,
        step_size: float = 0.25,
        lambda_cost: float = 0.001,
        lambda_energy: float = 0.0,
        energy_reg: float = 0.1,
        clip_grad: float | None = None,
        energy_decay: bool = False,
        onehot_steps: str = "relaxed",
        normalise_grad: bool = False,
        sparse_steps: float = 0.0,
    ):
        self.step_size = check_non_negative("step_size", step_size, allow_zero=False)
        if not isinstance(normalise_grad, bool):
            raise CTPluginError(f"normalise_grad must be true or false, got {normalise_grad!r}")
        self.normalise_grad = normalise_grad
        self.sparse_steps = float(sparse_steps)
        if not 0.0 <= self.sparse_steps <= 1.0:
            raise CTPluginError(f"sparse_steps must lie in [0, 1], got {sparse_steps}")
        self.clip_grad = None if clip_grad is None else check_non_negative("clip_grad", clip_grad, allow_zero=False)
        self.lambda_cost = check_non_negative("lambda_cost", lambda_cost)
        self.lambda_energy = check_non_negative("lambda_energy", lambda_energy)
        self.energy_reg = check_non_negative("energy_reg", energy_reg)
        if not isinstance(energy_decay, bool):
            raise CTPluginError(f"energy_decay must be true or false, got {energy_decay!r}")
        self.energy_decay = energy_decay
        if onehot_steps not in ONEHOT_STEPS:
            raise CTPluginError(f"onehot_steps must be one of {', '.join(ONEHOT_STEPS)}, got {onehot_steps!r}")
        self.onehot_steps = onehot_steps

    def energy_weight(self, step: int, max_steps: int) -> float:
        """The energy weight at search step ``step`` (0-based): constant, or decaying like the reference's."""
        if not self.energy_decay:
            return self.lambda_energy
        return self.lambda_energy * energy_decay_factor(step, max_steps)

    def penalty(
        self, logits: torch.Tensor, targets: torch.Tensor, x: torch.Tensor, weight: float | None = None
    ) -> torch.Tensor:
        """Per-row generator penalty added to yloss and cost: weight * (E + energy_reg * E^2).

        ``weight`` defaults to ``lambda_energy``; with ``energy_decay`` the search passes the decayed
        weight of the current step. The small ridge on the energy keeps a model whose target logit
        keeps growing away from the data from dragging x' there; the reference's experiments ran
        with ``energy_reg = 1e-3`` (preset ``reference``), this project's default is 0.1.
        """
        weight = self.lambda_energy if weight is None else weight
        if weight == 0:
            return torch.zeros(len(x), device=x.device)
        energy = -logits.gather(1, targets[:, None]).squeeze(1)
        return weight * (energy + self.energy_reg * energy**2)

    def search(
        self,
        model: torch.nn.Module,
        factuals: torch.Tensor,
        targets: torch.Tensor,
        constraints: SearchConstraints,
        *,
        tau: float,
        max_steps: int,
        epsilon: float,
        rng: torch.Generator | None = None,
    ) -> SearchResult:
        check_search_settings(tau, max_steps, epsilon)
        factuals = factuals.detach()
        n = len(factuals)
        device = factuals.device
        if self.onehot_steps == "continuous" and constraints.onehot_groups:  # the groups ignored, see ONEHOT_STEPS
            constraints = dataclasses.replace(constraints, onehot_groups=[])
        has_groups = bool(constraints.onehot_groups)
        project_steps = has_groups and self.onehot_steps == "projected"
        # per-search constants: the allowed step directions and the clamp box of every row; the masked steps keep
        # immutable and monotone columns, so the box pins them only for steered steps (which read it)
        up, down = constraints.directions()
        free, steer = bool(up.all() and down.all()), self.normalise_grad or self.sparse_steps > 0
        movable = None if steer or not bool((up == down).all()) else up.to(factuals.dtype)  # no monotone columns
        low, high = constraints.bounds(factuals, pin_mutability=steer)
        lower, upper = constraints.lower.to(low).expand_as(low), constraints.upper.to(high).expand_as(high)
        if torch.equal(low, lower) and torch.equal(high, upper):  # every row's box is the domain (images, mostly):
            low, high = lower[:1], upper[:1]  # one row of bounds, broadcast (no n x d reads, no gathers)
        shared_bounds = len(low) == 1 and n != 1
        onehot_columns = torch.zeros(factuals.shape[1], dtype=torch.bool, device=device)
        for group in constraints.onehot_groups:
            onehot_columns[group] = True

        adversarial = factuals.clone()
        track_adversarial = epsilon > 0  # with epsilon 0 only the factual itself qualifies
        steps = torch.zeros(n, dtype=torch.long, device=device)
        converged = torch.zeros(n, dtype=torch.bool, device=device)
        probability = torch.zeros(n, device=device)
        final = factuals.clone()  # each row's iterate is written once, when its search stops
        # only the rows still moving are computed: `rows` indexes them, `x_rows` are their iterates and
        # `shown` their valid one-hot versions (on which convergence is judged); their factuals, bounds and
        # targets are gathered again only when a row stops (a gather of every row each step cost a third of
        # a 784-pixel search)
        rows = torch.arange(n, device=device)
        x_rows, f_rows, low_rows, high_rows, row_targets = factuals, factuals, low, high, targets
        adv_rows = factuals  # each moving row's last iterate within epsilon (written out when the row stops)
        adv_owned = False  # whether adv_rows is this search's own copy (else it is the factuals or an iterate)
        distance: torch.Tensor | None = None  # x_rows - f_rows of the last step, where shown is x_rows
        gap_buffer = torch.empty_like(factuals) if track_adversarial else factuals
        shown = constraints.project_onehot(x_rows) if has_groups else x_rows
        # once the iterate is its own one-hot projection, the model's logits of x judge convergence
        # too (the second forward pass of the relaxed search is then the same computation)
        judged_is_x = not has_groups or (project_steps and torch.equal(shown, x_rows))
        # rows that stopped are carried along until an eighth of the rows has stopped, then dropped together
        # (dropping them one step at a time gathered every moving row's tensors each step); their results are
        # written when they stop, and what their carried iterates do afterwards is never read
        live, n_idle = torch.ones(n, dtype=torch.bool, device=device), 0

        with frozen(model):
            for step in range(max_steps + 1):
                x = x_rows.detach().requires_grad_(step < max_steps)
                logits = model(x)
                # the cross-entropy by hand, logsumexp - target logit: its exp(-.) is the target probability
                # too (softmax, log_softmax and its backward on n x classes took three times as long)
                loss = logits.logsumexp(dim=1) - logits.gather(1, row_targets[:, None]).squeeze(1)
                with torch.no_grad():
                    if judged_is_x:
                        p = loss.detach().neg().exp_()
                    else:
                        judged = model(shown)
                        p = (judged.gather(1, row_targets[:, None]).squeeze(1) - judged.logsumexp(dim=1)).exp_()
                done = p >= tau
                newly = done & live if n_idle else done  # rows that reach tau at this step
                n_newly = int(newly.sum())
                n_moving = len(rows) - n_idle - n_newly
                if step == max_steps or n_moving == 0:  # every row still searched ends here
                    ending = live.nonzero().squeeze(1) if n_idle else slice(None)
                    at = rows[ending]
                    final[at], adversarial[at] = shown[ending], adv_rows[ending]
                    probability[at], converged[at] = p[ending], done[ending]
                    break
                if n_newly:  # a row that stops keeps this iterate
                    stopping = newly.nonzero().squeeze(1)
                    at = rows[stopping]
                    final[at], adversarial[at] = shown[stopping], adv_rows[stopping]
                    probability[at], converged[at] = p[stopping], True
                moving = live & ~done if n_idle else ~done
                n_idle += n_newly
                loss = loss + self.penalty(logits, row_targets, x, self.energy_weight(step, max_steps))
                (grad,) = torch.autograd.grad((loss * moving).sum(), x)
                x_now = x.detach()
                if n_idle * 8 >= len(rows):  # an eighth of the rows stopped: drop them (each gather is a copy)
                    rows, grad, x_now = rows[moving], grad[moving], x_now[moving]
                    f_rows, row_targets = f_rows[moving], row_targets[moving]
                    adv_rows, adv_owned = adv_rows[moving], True  # a gather is a copy of its own
                    distance = distance[moving] if distance is not None else None
                    if not shared_bounds:
                        low_rows, high_rows = low_rows[moving], high_rows[moving]
                    n_idle, moving = 0, moving[moving]
                live = moving
                if self.lambda_cost:  # the L1 cost's gradient, lambda_cost * sign(x - x_factual), added by hand
                    # (autograd's abs took 5 passes); x - x_factual is the last step's distance where there is one
                    grad.add_((x_now - f_rows if distance is None else distance).sign_(), alpha=self.lambda_cost)
                grad = grad.nan_to_num_(nan=0.0)  # the reference sets NaN steps to 0 (grad: this step's own)
                if self.normalise_grad or self.sparse_steps > 0:
                    steered = normalise_rows(grad, x_now, low_rows, high_rows, up, down,
                                             onehot_columns if project_steps else None)
                    if self.sparse_steps > 0:  # only the features whose pull is near the strongest move
                        steered = torch.where(steered.abs() >= self.sparse_steps - 1e-12, steered, 0.0)
                    if not self.normalise_grad:  # back to the gradient's own size
                        steered = steered * grad.abs().amax(dim=1, keepdim=True)
                    grad = steered
                if self.clip_grad is not None:
                    grad = clip_rows(grad, self.clip_grad)
                move = grad.mul_(-self.step_size)  # grad is this step's own tensor: updated in place
                if movable is not None and not free:  # = constraints.mask_step with immutable columns only: one pass
                    move.mul_(movable)
                elif not free:  # = constraints.mask_step (a no-op where every feature moves both ways)
                    move.masked_fill_(~torch.where(move > 0, up, down), 0.0)
                x_rows = move.add_(x_now).clamp_(low_rows, high_rows)  # = constraints.clamp (low <= high)
                shown = constraints.project_onehot(x_rows) if has_groups else x_rows
                if project_steps:
                    x_rows = shown  # the reference continues from the projected one-hot state
                    judged_is_x = True
                steps[rows] += moving
                distance = None
                if track_adversarial:
                    # written into one buffer for the whole search (a fresh n x d tensor each step cost twice
                    # the subtraction); its largest |entry| from the max and min: no n x d abs written
                    gap = torch.sub(shown, f_rows, out=gap_buffer[: len(rows)])
                    within = torch.maximum(gap.amax(dim=1), gap.amin(dim=1).neg_()) <= epsilon
                    n_within = int(within.sum())  # early steps: every row within, late ones: none (no n x d pass)
                    if n_within == len(within):
                        adv_rows, adv_owned = shown, False  # a fresh tensor no later step writes into
                    elif n_within:  # only the rows within epsilon are copied (a where over n x d cost 0.5 ms)
                        if not adv_owned:
                            adv_rows, adv_owned = adv_rows.clone(), True
                        kept = within.nonzero().squeeze(1)
                        adv_rows.index_copy_(0, kept, shown.index_select(0, kept))
                    if shown is x_rows:
                        distance = gap  # next step's x - x_factual

        return SearchResult(
            counterfactuals=final,
            converged=converged,
            adversarial=adversarial,
            steps=steps,
            target_prob=probability,
        )


def _with_preset(preset: str | None, explicit: dict[str, object], defaults: dict[str, object]) -> dict[str, object]:
    """Settings from a named preset (or ``defaults``), overridden by the explicitly given ones."""
    if preset is None:
        base = dict(defaults)
    elif preset in ECCCO_PRESETS:
        base = dict(ECCCO_PRESETS[preset])
    else:
        raise CTPluginError(f"unknown preset {preset!r}; choose from {', '.join(ECCCO_PRESETS)}")
    base.update({k: v for k, v in explicit.items() if v is not None})
    return base


class GenericGenerator(GradientSearch):
    """Wachter et al. (2017): yloss + lambda_cost * L1 distance."""

    name = "generic"

    def __init__(
        self,
        step_size: float | None = None,
        lambda_cost: float = 0.001,
        clip_grad: float | None = None,
        onehot_steps: str | None = None,
        preset: str | None = None,
        normalise_grad: bool = False,
        sparse_steps: float = 0.0,
    ):
        """``preset="reference"`` takes the reference's step (0.1) and one-hot projection per step;
        ``normalise_grad`` makes every step move the steepest movable feature by ``step_size`` sd;
        ``sparse_steps`` s in (0, 1] moves only the features pulled at least s times as hard as the
        steepest (1: one feature at a time, the steepest descent of the L1 cost)."""
        chosen = _with_preset(
            preset, {"step_size": step_size, "onehot_steps": onehot_steps}, ECCCO_PRESETS["project"]
        )
        super().__init__(
            float(chosen["step_size"]), lambda_cost, lambda_energy=0.0, energy_reg=0.0, clip_grad=clip_grad,
            onehot_steps=str(chosen["onehot_steps"]), normalise_grad=normalise_grad, sparse_steps=sparse_steps,
        )
        self.preset = preset


class ECCCoGenerator(GradientSearch):
    """ECCCo (Altmeyer et al. 2024) without the conformal penalty: adds lambda_energy * E(x', y+).

    ``preset`` names a set of defaults for ``step_size``, ``energy_reg``, ``energy_decay`` and
    ``onehot_steps`` (explicit arguments win):

    * ``"project"`` (the default): step 0.25, ridge 0.1, a constant energy weight, one-hot groups
      relaxed during the search (convergence is judged on their argmax version);
    * ``"reference"``: what the reference's experiments ran (CounterfactualExplanations.jl): step
      0.1 (Flux's default ``Descent()``), ridge 1e-3, the decaying multiplier of
      :func:`energy_decay_factor`, and each one-hot group set to its argmax after every step (the
      reference's test-time search; its in-training search ignores the groups: ``onehot_steps="continuous"``,
      see :data:`ONEHOT_STEPS`).
    """

    name = "eccco"

    def __init__(
        self,
        step_size: float | None = None,
        lambda_cost: float = 0.001,
        lambda_energy: float = 5.0,
        energy_reg: float | None = None,
        clip_grad: float | None = None,
        energy_decay: bool | None = None,
        onehot_steps: str | None = None,
        preset: str | None = None,
        normalise_grad: bool = False,
        sparse_steps: float = 0.0,
    ):
        chosen = _with_preset(
            preset,
            {"step_size": step_size, "energy_reg": energy_reg, "energy_decay": energy_decay,
             "onehot_steps": onehot_steps},
            ECCCO_PRESETS["project"],
        )
        super().__init__(
            float(chosen["step_size"]), lambda_cost, lambda_energy, float(chosen["energy_reg"]), clip_grad,
            energy_decay=chosen["energy_decay"], onehot_steps=str(chosen["onehot_steps"]),
            normalise_grad=normalise_grad, sparse_steps=sparse_steps,
        )
        self.preset = preset
