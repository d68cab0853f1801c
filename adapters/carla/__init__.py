"""ct-plugin adapter for CARLA (carla-recourse 0.0.5), importable as ``ct_plugin.adapters.carla``.

Modules (importing this package imports none of them and never imports CARLA):

* :mod:`~ct_plugin.adapters.carla.plugin`: registers the ``carla-*`` generators and the
  ``ct-plugin benchmark`` / ``ct-plugin carla`` commands (entry point ``carla``).
* :mod:`~ct_plugin.adapters.carla.compat`: ``import_carla()``, the fixes that make CARLA 0.0.5 run
  on Python >= 3.10 with current numpy, pandas, scikit-learn and torch, without TensorFlow (one
  module per family of fixes: ``compat_placeholders``, ``compat_aliases``, ``compat_carla_patches``).
* :mod:`~ct_plugin.adapters.carla.install`: ``python -m ct_plugin.adapters.carla.install``.
* :mod:`~ct_plugin.adapters.carla.wrappers`: our dataset as CARLA ``Data``, our model as CARLA
  ``MLModel``, CARLA catalog models as a starting point for CT (``wrappers_data``,
  ``wrappers_model``, ``wrappers_catalog``).
* :mod:`~ct_plugin.adapters.carla.generators`: CARLA's recourse methods as counterfactual generators.
* :mod:`~ct_plugin.adapters.carla.benchmark`: CARLA's ``Benchmark`` for trained runs (its tables,
  plot and notes: ``benchmark_report``).

See ``docs/carla.md``.
"""
