"""docs/reference.md is generated from the protocol module and the options models: it must match
what the code says today (run scripts/reference.py after changing either)."""

import importlib.util

from tests.support.paths import ROOT


def test_the_reference_matches_the_code() -> None:
    spec = importlib.util.spec_from_file_location("reference", ROOT / "scripts" / "reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    committed = (ROOT / "docs" / "reference.md").read_text()
    assert committed == reference.render(), "docs/reference.md is stale: run .venv/bin/python scripts/reference.py"
