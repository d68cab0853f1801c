"""Bridges to host libraries (CARLA, DiCE), importable as ``ct_plugin.adapters.*``.

Each adapter is a plugin registered through the ``ct_plugin`` entry-point group, exactly
as a third-party package would be. Importing an adapter never imports its host library;
the host library is imported only when one of its generators is built.
"""
