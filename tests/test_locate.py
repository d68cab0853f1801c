"""One data resolver: the documented order, and an error that lists the places searched."""

from __future__ import annotations

import pytest

from ct_plugin.cli import main
from ct_plugin.data.locate import DataNotFoundError, find_file, search_path


def test_order_explicit_then_env_then_cache(tmp_path, monkeypatch):
    a, b, cache = tmp_path / "a", tmp_path / "b", tmp_path / "xdg"
    for folder in (a, b, cache / "ct-plugin" / "data"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("CT_PLUGIN_DATA", f"{a}:{b}")
    assert [p for _, p in search_path()] == [a, b, cache / "ct-plugin" / "data"]
    (cache / "ct-plugin" / "data" / "t.csv").write_text("x\n")
    assert find_file("t.csv") == cache / "ct-plugin" / "data" / "t.csv"  # the cache is the last resort
    (b / "t.csv").write_text("x\n")
    assert find_file("t.csv") == b / "t.csv"
    assert [p for _, p in search_path(tmp_path)] == [tmp_path]  # an explicit folder is the only place


def test_error_lists_every_place_and_how_to_fill_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CT_PLUGIN_DATA", str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as info:
        find_file("gmsc.csv", how_to_get="fetch it")
    message = str(info.value)
    assert str(tmp_path / "env") in message and str(tmp_path / "xdg" / "ct-plugin" / "data") in message
    assert "CT_PLUGIN_DATA" in message and "--data-dir" in message and "fetch it" in message


def test_datasets_where_and_manual_download_origin(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CT_PLUGIN_DATA", str(tmp_path))
    assert main(["datasets", "--where"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "credit_default" in out and "archive.ics.uci.edu" in out
    assert main(["datasets", "--download", "credit_default"]) == 1  # no direct CSV: names origin and file
    err = capsys.readouterr().err
    assert "default+of+credit+card+clients.zip" in err and "credit_default.csv" in err
