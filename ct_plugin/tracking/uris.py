"""Where trackers log: a tracking location is checked before any training, and never shown with its credentials."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ct_plugin.errors import CTPluginError

MLFLOW_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql")
"""Tracking URI schemes MLflow stores take (a plain folder path works too)."""
PROBE_SECONDS = 5.0
"""How long a tracking server may take to accept a connection before the run is refused."""


def redact(uri: str) -> str:
    """``uri`` with any user name and password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_tracking_uri(name: str, uri: str | Path | None) -> None:
    """Refuse, within :data:`PROBE_SECONDS`, a tracking location the tracker cannot use (credentials redacted).

    TensorBoard writes event files to a local folder: a URI is refused. MLflow takes a folder or a URI
    of :data:`MLFLOW_SCHEMES`; an ``http(s)`` server must accept a connection within the probe time.
    """
    if uri is None:
        return
    text = str(uri)
    scheme = urlsplit(text).scheme.lower() if "://" in text or text.startswith("file:") else ""
    if name == "tensorboard":
        if scheme and scheme != "file":
            raise CTPluginError(f"TensorBoard writes event files to a local folder; --track-uri must be a folder, "
                                f"got the {scheme}: URI {redact(text)}")
        return
    if scheme and scheme not in MLFLOW_SCHEMES:
        raise CTPluginError(f"unsupported MLflow tracking URI scheme {scheme!r} in {redact(text)}; use a folder or "
                            f"one of {', '.join(s + ':' for s in MLFLOW_SCHEMES)}")
    if scheme in ("http", "https"):
        parts = urlsplit(text)
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=PROBE_SECONDS):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise CTPluginError(
                f"cannot reach the MLflow tracking server {redact(text)} ({reason}, tried for {PROBE_SECONDS:g} s); "
                "check --track-uri, or leave it out to track into local files"
            ) from None
