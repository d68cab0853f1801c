"""Run directories: the only code that writes or reads what a training run leaves on disk.

:mod:`~ct_plugin.runs.files` names the files and reads them safely, :mod:`~ct_plugin.runs.record`
writes ``config.json``'s provenance and checks that a run's files agree,
:mod:`~ct_plugin.runs.checkpoint` rotates checkpoints and locks a run, and
:mod:`~ct_plugin.runs.load` loads a run (``ct_plugin.load_run``, ``ct_plugin.load_model``).
"""
