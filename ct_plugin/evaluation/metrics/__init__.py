"""Evaluation metrics of docs/method.md ("How the evaluation works"), as batched torch functions and registry items.

Every metric exists twice:

* as a plain function over tensors (``validity``, ``cost``, ``implausibility``, ``mmd2_unbiased``,
  ``redundancy``, ``robust_accuracy``, ``integrated_gradients``, ...), usable on any model and
  any counterfactual set;
* as a registry item (kind ``metric``): ``factory(**options)`` returns a callable
  ``metric(context) -> float`` over a :class:`MetricContext`.

Definitions (stated once, used everywhere):

* **validity**: share of counterfactuals whose predicted class (argmax) is the target.
* **cost**: L1 distance ``||x' - x||_1`` in encoded (standardised) units, averaged over the
  valid counterfactuals only (the paper's cost of "just valid" counterfactuals).
* **IP**: mean **Euclidean (L2)** distance from each counterfactual to the observed training
  samples of its target class, averaged over counterfactuals.
* **IP***: unbiased estimate of the squared MMD (Gretton et al. 2012) between the
  counterfactuals of a target class and the observed samples of that class, with the Gaussian
  kernel ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``; ``sigma`` is the median heuristic: the
  median pairwise Euclidean distance among the target-class samples (so it depends on the data
  only and is the same for every model compared). With several target classes, the per-class
  estimates are averaged weighted by the number of counterfactuals of each class.
* **redundancy**: share of the changed features (one-hot groups count as one feature) that can
  be reset to the factual's value, one at a time, without losing validity; averaged over the
  counterfactuals that changed at least one feature.
* **robust accuracy**: accuracy on adversarial inputs from FGSM (one signed-gradient step of
  size epsilon) or PGD (10 steps of size epsilon/4 projected onto the L-inf ball, no random
  start); inputs are not clamped to the domain bounds.
* **protected attribution share**: integrated gradients (captum, midpoint Riemann sum, 32 steps,
  baseline = the training mean) of the target-class logit; the share of the absolute
  attribution mass that falls on the protected features, averaged over inputs. The other captum
  methods (saliency, input x gradient, DeepLift, GradientSHAP) are metrics ``protected_<method>``;
  ``ig_convergence_delta`` reports captum's completeness check of the IG sum.

The functions live by idea: the counterfactual-set metrics (validity, cost, IP, IP*, redundancy) in
:mod:`~ct_plugin.evaluation.metrics.counterfactual`, the attacks and robust accuracy in
:mod:`~ct_plugin.evaluation.metrics.robustness`, attributions in :mod:`ct_plugin.evaluation.attribution`,
the :class:`MetricContext` and the registry items in :mod:`~ct_plugin.evaluation.metrics.items`, the
names and better directions of the reported metrics in :mod:`~ct_plugin.evaluation.metrics.directions`.
This package's face lists the public functions.
"""

from ct_plugin.evaluation.attribution import attribution_share, integrated_gradients, row_shares
from ct_plugin.evaluation.metrics.counterfactual import (
    cached_self_term,
    cost,
    feature_units,
    gaussian_kernel,
    implausibility,
    ip_star,
    kernel_self_term,
    l1_cost,
    mad_weights,
    median_bandwidth,
    mmd2_unbiased,
    redundancy,
    validity,
)
from ct_plugin.evaluation.metrics.items import METRIC_FUNCTIONS, MetricContext, ip_metric, metric_items
from ct_plugin.evaluation.metrics.robustness import ATTACKS, fgsm, pgd, robust_accuracy

__all__ = [
    "ATTACKS",
    "METRIC_FUNCTIONS",
    "MetricContext",
    "attribution_share",
    "cached_self_term",
    "cost",
    "feature_units",
    "fgsm",
    "gaussian_kernel",
    "implausibility",
    "integrated_gradients",
    "ip_metric",
    "ip_star",
    "kernel_self_term",
    "l1_cost",
    "mad_weights",
    "median_bandwidth",
    "metric_items",
    "mmd2_unbiased",
    "pgd",
    "redundancy",
    "robust_accuracy",
    "row_shares",
    "validity",
]
