"""Hook specifications of ct-plugin (pluggy project name ``ct_plugin``).

A plugin is any module or object with functions decorated by :data:`hookimpl` whose
names match the specs below. Built-in parts register exactly like third-party ones:
through the ``ct_plugin`` entry-point group, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points.ct_plugin]
    my_plugin = "my_package.plugin"

or at run time with :func:`ct_plugin.register_plugin`.

Registry hooks return a list of :class:`ct_plugin.plugins.registry.PluginItem`; lifecycle hooks
receive an event object and return nothing.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "ct_plugin"
ENTRY_POINT_GROUP = "ct_plugin"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------- registries
@hookspec
def ct_plugin_generators():
    """Counterfactual generators this plugin provides.

    Called once when the registry is built. Return a list of ``PluginItem`` whose
    ``factory(**options)`` returns a :class:`ct_plugin.generators.base.CounterfactualGenerator`.
    An item may be marked ``available=False`` with a ``reason`` (e.g. a missing host
    library); it is then listed but refuses to be built, with that reason.
    """


@hookspec
def ct_plugin_strategies():
    """Training strategies this plugin provides.

    Return a list of ``PluginItem`` whose ``factory(config)`` returns a
    :class:`ct_plugin.training.strategies.TrainingStrategy` (which loss terms are active when).
    """


@hookspec
def ct_plugin_metrics():
    """Evaluation metrics this plugin provides.

    Return a list of ``PluginItem`` whose ``factory(**options)`` returns a callable
    ``metric(context) -> float`` over a :class:`ct_plugin.evaluation.metrics.MetricContext`.
    """


@hookspec
def ct_plugin_datasets():
    """Datasets this plugin provides.

    Return a list of ``PluginItem`` whose ``factory(data_dir=None, seed=0, **options)``
    returns a :class:`ct_plugin.data.spec.DatasetSpec`.
    """


@hookspec
def ct_plugin_models():
    """Model architectures this plugin provides.

    Return a list of ``PluginItem`` whose ``factory(n_features, n_classes, **options)``
    returns a ``torch.nn.Module`` mapping encoded features to ``n_classes`` logits.
    """


# ----------------------------------------------------------------- lifecycle
@hookspec
def ct_plugin_train_start(event):
    """Called once before the first epoch of a training run (also of a resumed one).

    ``event`` is a :class:`ct_plugin.plugins.events.TrainStartEvent` (the resolved config, the dataset
    spec, the model, the run directory or None, and the epoch training starts from).
    Experiment trackers (``ct_plugin.tracking``) open their run here.
    """


@hookspec
def ct_plugin_train_end(event):
    """Called once after the last epoch (``model.pt`` written), with a ``TrainEndEvent``."""


@hookspec
def ct_plugin_evaluation_end(event):
    """Called when ``ct-plugin evaluate`` has written its tables, with an ``EvaluationEvent``."""


@hookspec
def ct_plugin_after_search(event):
    """Called after every counterfactual search during training.

    ``event`` is a :class:`ct_plugin.plugins.events.SearchEvent` (epoch, factuals, targets, the
    :class:`~ct_plugin.generators.base.SearchResult` and the seconds it took).
    """


@hookspec
def ct_plugin_batch_end(event):
    """Called after every optimiser step (or skipped step) with a :class:`ct_plugin.plugins.events.BatchEvent`."""


@hookspec
def ct_plugin_epoch_end(event):
    """Called after every epoch with a :class:`ct_plugin.plugins.events.EpochEvent` (the epoch's log record)."""


# ----------------------------------------------------------------------- CLI
@hookspec
def ct_plugin_add_commands(subparsers):
    """Add sub-commands to the ``ct-plugin`` command line.

    ``subparsers`` is the ``argparse`` sub-parser action of the top-level parser. Each
    added parser must set ``func=callable(args) -> int`` with ``set_defaults``; the
    callable's return value is the exit status. Adapters use this for e.g.
    ``ct-plugin carla install`` and ``ct-plugin benchmark``.
    """
