"""The settings layer: every value a user gives is coerced or refused here, by name.

:mod:`~ct_plugin.settings.coerce` turns flags, ``KEY=VALUE`` options and config values into
typed settings (or one :class:`~ct_plugin.errors.InvalidSettingError`), and
:mod:`~ct_plugin.settings.files` reads TOML, YAML and JSON settings files.
"""
