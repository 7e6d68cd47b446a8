"""The README's code blocks, as a reader copies them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_block(marker: str) -> str:
    """The one ```python block of the README that contains `marker`, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if marker in block]
    return block


def stated(claim: str) -> tuple[str, ...]:
    """What the README says where the regular expression `claim` matches its prose (line breaks
    and indentation read as one space): the groups of its one match."""
    prose = " ".join(README.read_text().split())
    matches = list(re.finditer(claim, prose))
    assert len(matches) == 1, f"the README states {claim!r} {len(matches)} times, not once"
    return matches[0].groups()
