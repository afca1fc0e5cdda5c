"""The README's term table is the registry's, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from recforge.objectives.registry import TERMS, terms_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_term_table_matches_the_registry():
    text = README.read_text()
    block = re.search(r"<!-- terms:begin -->\n(.*?)\n<!-- terms:end -->", text, re.S)
    assert block is not None, "README.md lost its <!-- terms:begin/end --> markers"
    assert block.group(1).strip() == terms_markdown()
    for name in TERMS:
        assert f"| `{name}` |" in block.group(1)
