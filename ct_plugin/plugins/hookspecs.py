"""Hook specifications of ct-plugin (pluggy project name ``ct_plugin``).

A plugin is any module or object with functions decorated by :data:`hookimpl` whose
names match the specs below. Built-in parts register exactly like third-party ones:
through the ``ct_plugin`` entry-point group, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points.ct_plugin]
    my_plugin = "my_package.plugin"

or at run time with :func:`ct_plugin.register_plugin`.

Registry hooks return a list of :class:`~ct_plugin.plugins.registry.PluginItem` (loss terms: of
:class:`~ct_plugin.plugins.registry.LossTerm`); lifecycle hooks receive an event object and return
nothing.

**Versions.** The hooks form the plugin API, versioned ``MAJOR.MINOR`` (:data:`API_VERSION`); each
hook says since which version it exists. A minor version adds hooks or optional fields; a major
version changes or removes one. A plugin may declare the version it was written against as a
module (or object) attribute ``CT_PLUGIN_API = "2.0"``: a plugin that needs a newer API than this
ct-plugin provides is refused with the version it needs, and one written for an older major
version loads with a ``DeprecationWarning``.

**Deprecation rule.** A hook (or a field of an item or an event) that is to change is first
marked deprecated for at least one minor release: pluggy then warns every plugin that implements
it (``warn_on_impl``), and the documentation names its replacement. It changes or goes only in the
next major version. No hook is deprecated in API 2.0.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "ct_plugin"
ENTRY_POINT_GROUP = "ct_plugin"

API_VERSION = "2.0"
"""The plugin API this ct-plugin provides (1.0: the hooks up to ct-plugin 0.1; 2.0 adds loss terms,
update schedules and factual selectors as plugins, and ``TrainingStrategy``'s training behaviour)."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------- registries
@hookspec
def ct_plugin_generators():
    """Counterfactual generators this plugin provides. Since API 1.0.

    Called once when the registry is built. Return a list of ``PluginItem`` whose
    ``factory(**options)`` returns a :class:`ct_plugin.generators.base.CounterfactualGenerator`.
    An item may be marked ``available=False`` with a ``reason`` (e.g. a missing host
    library); it is then listed but refuses to be built, with that reason.
    """


@hookspec
def ct_plugin_strategies():
    """Training strategies this plugin provides. Since API 1.0 (behaviour hooks since 2.0).

    Return a list of ``PluginItem`` whose ``factory(config)`` returns a
    :class:`ct_plugin.training.strategies.TrainingStrategy`: which loss terms are on when, and
    (since 2.0) the update schedule, the factual selector, when searches run, and the hooks a
    strategy may override (auxiliary networks, a filter on the counterfactual batch, the data of
    an epoch, its checkpointed state).
    """


@hookspec
def ct_plugin_loss_terms():
    """Terms of the training objective this plugin provides. Since API 2.0.

    Return a list of :class:`~ct_plugin.plugins.registry.LossTerm` whose ``factory(context)``
    returns the term's value on one batch (a scalar tensor) from a
    :class:`ct_plugin.training.objective.BatchContext`. A term named ``smooth`` is weighted by the
    setting ``lambda_smooth`` (flag ``--lambda-smooth``, a ``tune`` and grid axis), is on with
    any strategy once its weight is set above 0, and is logged per epoch as ``smooth``.
    """


@hookspec
def ct_plugin_update_schedules():
    """Update schedules this plugin provides: how one batch's terms update the model. Since API 2.0.

    Return a list of ``PluginItem`` whose ``factory()`` returns a
    :class:`ct_plugin.training.schedules.UpdateSchedule` (``joint``, built in: one optimiser step
    on the weighted sum of every active term).
    """


@hookspec
def ct_plugin_factual_selectors():
    """Rules that choose the factuals of the in-training counterfactual search. Since API 2.0.

    Return a list of ``PluginItem`` whose ``factory()`` returns a
    :class:`ct_plugin.training.factuals.FactualSelector` (``uniform``, built in: a uniform draw
    of ``nce`` training rows).
    """


@hookspec
def ct_plugin_metrics():
    """Evaluation metrics this plugin provides. Since API 1.0.

    Return a list of ``PluginItem`` whose ``factory(**options)`` returns a callable
    ``metric(context) -> float`` over a :class:`ct_plugin.evaluation.metrics.MetricContext`.
    """


@hookspec
def ct_plugin_datasets():
    """Datasets this plugin provides. Since API 1.0.

    Return a list of ``PluginItem`` whose ``factory(data_dir=None, seed=0, **options)``
    returns a :class:`ct_plugin.data.spec.DatasetSpec`.
    """


@hookspec
def ct_plugin_models():
    """Model architectures this plugin provides. Since API 1.0.

    Return a list of ``PluginItem`` whose ``factory(n_features, n_classes, **options)``
    returns a ``torch.nn.Module`` mapping encoded features to ``n_classes`` logits.
    """


# ----------------------------------------------------------------- lifecycle
@hookspec
def ct_plugin_train_start(event):
    """Called once before the first epoch of a training run (also of a resumed one). Since API 1.0.

    ``event`` is a :class:`ct_plugin.plugins.events.TrainStartEvent` (the resolved config, the dataset
    spec, the model, the run directory or None, and the epoch training starts from).
    Experiment trackers (``ct_plugin.tracking``) open their run here.
    """


@hookspec
def ct_plugin_train_end(event):
    """Called once after the last epoch (``model.pt`` written). Since API 1.0.

    ``event`` is a :class:`ct_plugin.plugins.events.TrainEndEvent` (config, spec, model, log, run directory).
    """


@hookspec
def ct_plugin_evaluation_end(event):
    """Called when ``ct-plugin evaluate`` has written its tables. Since API 1.0.

    ``event`` is a :class:`ct_plugin.plugins.events.EvaluationEvent` (the tables by name and the files).
    """


@hookspec
def ct_plugin_after_search(event):
    """Called after every counterfactual search during training. Since API 1.0.

    ``event`` is a :class:`ct_plugin.plugins.events.SearchEvent` (epoch, factuals, targets, the
    :class:`~ct_plugin.generators.base.SearchResult` and the seconds it took).
    """


@hookspec
def ct_plugin_batch_end(event):
    """Called after every batch's update (or skipped update). Since API 1.0.

    ``event`` is a :class:`ct_plugin.plugins.events.BatchEvent` (each active term's value, whether skipped).
    """


@hookspec
def ct_plugin_epoch_end(event):
    """Called after every epoch. Since API 1.0.

    ``event`` is a :class:`ct_plugin.plugins.events.EpochEvent` (the epoch's log record and the model).
    """


# ----------------------------------------------------------------------- CLI
@hookspec
def ct_plugin_add_commands(subparsers):
    """Add sub-commands to the ``ct-plugin`` command line. Since API 1.0.

    ``subparsers`` is the ``argparse`` sub-parser action of the top-level parser. Each
    added parser must set ``func=callable(args) -> int`` with ``set_defaults``; the
    callable's return value is the exit status. Adapters use this for e.g.
    ``ct-plugin carla install`` and ``ct-plugin benchmark``. (The built-in commands are added
    by :mod:`ct_plugin.cli` itself; plugins load only for a command that needs them.)
    """
