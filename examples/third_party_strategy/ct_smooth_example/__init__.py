"""ct-smooth-example: a third-party ct-plugin plugin (see ``plugin.py``)."""
