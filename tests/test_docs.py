"""The README's option and effect tables are the declarations' own (``keyer.docs``)."""
from __future__ import annotations

from keyer import docs
from tests.conftest import ROOT


def test_readme_tables_are_made_from_the_declarations():
    text = (ROOT / "README.md").read_text()
    assert docs.replaced(text) == text, "stale: run python -m keyer.docs --write README.md"
    assert "| `--softness` | `0.88` | 0.01..1 |" in text
    assert "| `-y`, `--overwrite` |" in text and "Env: `KEYER_MAX_MEGAPIXELS`." in text


def test_effect_summaries_are_whole_sentences():
    table = docs.effects_table()
    assert "from a height map (the frame's luminance or a texture); alpha and flat areas unchanged." in table
