"""CounterNet's counterfactual generator network (Guo, Nguyen & Yadav, KDD 2023), and its post-hoc use.

CounterNet trains a predictor h and a generator g end to end; g maps a row x (with h's prediction)
to its counterfactual x' in one forward pass. Its loss is

    lambda_1 * yloss(h(x), y) + lambda_2 * || softmax(h(x')) - onehot(y') ||^2 + lambda_3 * || x - x' ||_1 / d

updated block-wise: a step on the prediction loss, then a step on validity (MSE) + proximity (L1).
Defaults as its reference implementation (ReLax): lambda_2 = 0.2, lambda_3 = 0.1.

Here g is :class:`GeneratorNetwork`: an MLP over ``[x, softmax(h(x)), onehot(y')]`` (the target
class y' is an input, so K > 2 classes work: y' is drawn among the classes other than the
prediction) whose output is a step added to x; each one-hot group's output is a softmax (relaxed;
a valid one-hot at inference), and every row is clamped to the data's constraints (immutable and
monotone features, the domain) so g can only propose actionable counterfactuals.

:class:`CounterNetGenerator` is g as a post-hoc generator (``--posthoc-generator counternet`` in
``evaluate``): for a model it has not seen, it first trains g against that model, frozen, on the
training rows (validity + proximity, the model's weights untouched), then explains every factual
with one forward pass. The strategy ``counternet`` (:mod:`ct_plugin.training.counternet`) trains g
together with the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ct_plugin.constraints import SearchConstraints
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.base import CounterfactualGenerator, SearchResult, nascent_by_fgsm, target_probability
from ct_plugin.sampling import sample_targets
from ct_plugin.torch_utils import frozen

LAMBDA_VALIDITY = 0.2
LAMBDA_PROXIMITY = 0.1


class GeneratorNetwork(nn.Module):
    """g: ``[x, softmax(h(x)), onehot(y')] -> x'`` under the data's constraints."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.n_classes = n_classes
        self.net = nn.Sequential(nn.Linear(n_features + 2 * n_classes, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_features))

    def forward(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor, constraints: SearchConstraints,
                hard: bool = False) -> torch.Tensor:
        """Counterfactuals of ``x`` towards ``targets``; ``hard``: one-hot groups made valid (inference)."""
        probabilities = torch.softmax(model(x), dim=1)
        wanted = F.one_hot(targets, self.n_classes).to(x.dtype)
        raw = self.net(torch.cat([x, probabilities, wanted], dim=1))
        out = x + raw
        for group in constraints.onehot_groups:  # a few groups per table: the columns of each at once
            out = out.index_copy(1, group, torch.softmax(raw.index_select(1, group), dim=1))
        if hard:
            out = constraints.project_onehot(out)
        return constraints.clamp(out, x)


def generator_losses(model: nn.Module, generator: GeneratorNetwork, x: torch.Tensor, targets: torch.Tensor,
                     constraints: SearchConstraints) -> tuple[torch.Tensor, torch.Tensor]:
    """CounterNet's validity (squared error of h(x')'s probabilities to onehot(y'), mean over rows) and proximity
    (the L1 distance per feature: the elementwise mean of ``|x' - x|``)."""
    counterfactuals = generator(model, x, targets, constraints)
    probabilities = torch.softmax(model(counterfactuals), dim=1)
    validity = ((probabilities - F.one_hot(targets, generator.n_classes).to(x.dtype)) ** 2).sum(dim=1).mean()
    proximity = (counterfactuals - x).abs().mean()  # the elementwise mean: per feature, as in [0, 1]-scaled data
    return validity, proximity


def flipped_targets(model: nn.Module, x: torch.Tensor, n_classes: int, rng: torch.Generator | None) -> torch.Tensor:
    """A target class other than the model's prediction per row (the flip for binary data)."""
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    return sample_targets(predicted, n_classes, rng)


class CounterNetGenerator(CounterfactualGenerator):
    """CounterNet's generator network as a post-hoc generator: trained against the frozen model, then one pass.

    Options: ``epochs`` (20) and ``batch_size`` (256) of g's training on the training rows, ``hidden``
    (64), ``lr`` (0.001), ``lambda_validity`` (0.2), ``lambda_proximity`` (0.1), ``seed`` (0). The
    trained g is kept for the model it was trained against (same object, same weights).
    """

    name = "counternet"
    provides_path = False

    def __init__(self, epochs: int = 20, batch_size: int = 256, hidden: int = 64, lr: float = 1e-3,
                 lambda_validity: float = LAMBDA_VALIDITY, lambda_proximity: float = LAMBDA_PROXIMITY, seed: int = 0):
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CTPluginError(f"counternet: {name} must be a positive integer, got {value!r}")
        for name, value in (("lr", lr), ("lambda_validity", lambda_validity), ("lambda_proximity", lambda_proximity)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0 or value != value:
                raise CTPluginError(f"counternet: {name} must be a non-negative number, got {value!r}")
        if lr <= 0:
            raise CTPluginError(f"counternet: lr must be positive, got {lr!r}")
        self.epochs, self.batch_size, self.hidden, self.lr = epochs, batch_size, hidden, float(lr)
        self.lambda_validity, self.lambda_proximity, self.seed = float(lambda_validity), float(lambda_proximity), seed
        self.X_train: torch.Tensor | None = None
        self.n_classes = 0
        self._trained: tuple[int, tuple[int, ...], float, GeneratorNetwork] | None = None

    def fit(self, spec: DatasetSpec, device: torch.device | str = "cpu") -> None:
        """Keep the training rows g trains on."""
        self.X_train = torch.as_tensor(spec.X_train, dtype=torch.float32, device=device)
        self.n_classes = spec.n_classes
        self._trained = None

    @staticmethod
    def _fingerprint(model: nn.Module) -> float:
        with torch.no_grad():
            return float(sum(p.double().sum() for p in model.parameters()))

    def network_for(self, model: nn.Module, constraints: SearchConstraints) -> GeneratorNetwork:
        """g trained against ``model`` (frozen), reusing the last one when the model is the same."""
        if self.X_train is None:
            raise CTPluginError("counternet: fit(spec) must run before search (it needs the training rows)")
        key = (id(model), tuple(id(g) for g in constraints.onehot_groups), self._fingerprint(model))
        if self._trained is not None and self._trained[:3] == key:
            return self._trained[3]
        torch.manual_seed(self.seed)
        rng = torch.Generator().manual_seed(self.seed)
        X = self.X_train
        network = GeneratorNetwork(X.shape[1], self.n_classes, self.hidden).to(X.device)
        optimiser = torch.optim.Adam(network.parameters(), lr=self.lr)
        with frozen(model):
            for _ in range(self.epochs):
                order = torch.randperm(len(X), generator=rng).to(X.device)
                for index in torch.split(order, self.batch_size):
                    x = X[index]
                    targets = flipped_targets(model, x, self.n_classes, rng)
                    validity, proximity = generator_losses(model, network, x, targets, constraints)
                    loss = self.lambda_validity * validity + self.lambda_proximity * proximity
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
        network.eval()
        self._trained = (*key, network)
        return network

    def search(self, model: nn.Module, factuals: torch.Tensor, targets: torch.Tensor,
               constraints: SearchConstraints, *, tau: float, max_steps: int, epsilon: float,
               rng: torch.Generator | None = None) -> SearchResult:
        """One forward pass of g (trained against ``model`` first if needed); ``max_steps`` is not used."""
        network = self.network_for(model, constraints)
        with frozen(model), torch.no_grad():
            counterfactuals = network(model, factuals, targets, constraints, hard=True)
        probability = target_probability(model, counterfactuals, targets)
        return SearchResult(
            counterfactuals=counterfactuals, converged=probability >= tau,
            adversarial=nascent_by_fgsm(model, factuals, targets, constraints, epsilon),
            steps=torch.ones(len(factuals), dtype=torch.long, device=factuals.device), target_prob=probability,
        )
