"""Generated documentation stays in step with the code it describes."""

from __future__ import annotations

from pathlib import Path

from ct_plugin.cli.plugins import plugin_docs

ROOT = Path(__file__).resolve().parents[1]


def test_plugins_md_is_what_the_code_generates():
    committed = (ROOT / "docs" / "plugins.md").read_text()
    assert committed == plugin_docs(), (
        "docs/plugins.md is out of date with the hook specifications, the registry or the settings table; "
        "regenerate it: ct-plugin plugins --docs > docs/plugins.md"
    )


def test_the_plugin_page_documents_every_hook_and_setting():
    page = plugin_docs()
    from ct_plugin.config import TRAIN_SETTINGS
    from ct_plugin.plugins import hookspecs

    for name in dir(hookspecs):
        if name.startswith("ct_plugin_"):
            assert f"### `{name}(" in page
    for row in TRAIN_SETTINGS:
        assert f"| `{row.name}` |" in page
    assert f"Plugin API version **{hookspecs.API_VERSION}**" in page
