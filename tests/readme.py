"""The README's code blocks, as a reader copies them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_block(marker: str) -> str:
    """The one ```python block of the README that contains `marker`, verbatim."""
    return code_block("python", marker)


def code_block(language: str, marker: str) -> str:
    """The one block of `language` in the README that contains `marker`, verbatim."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if marker in block]
    return block


def config_row(key: str) -> str:
    """The configuration table's row of `key`."""
    [row] = [line for line in README.read_text().splitlines() if line.startswith(f"| `{key}` |")]
    return row


def section_table(heading: str) -> list[dict[str, str]]:
    """The first table under the `## ` heading that starts with `heading`: one dict per row, keyed
    by the header's cells, each cell stripped, its backticks kept."""
    [section] = re.findall(
        rf"^## {re.escape(heading)}.*?(?=^## |\Z)", README.read_text(), flags=re.M | re.S
    )
    [table] = re.findall(r"^(\|.*?)\n(?!\|)", section, flags=re.M | re.S)[:1]
    header, _rule, *rows = [_cells(line) for line in table.splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def _cells(line: str) -> list[str]:
    # Table cells here hold no escaped pipes.
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def stated(claim: str) -> tuple[str, ...]:
    """What the README says where the regular expression `claim` matches its prose (line breaks
    and indentation read as one space): the groups of its one match."""
    prose = " ".join(README.read_text().split())
    matches = list(re.finditer(claim, prose))
    assert len(matches) == 1, f"the README states {claim!r} {len(matches)} times, not once"
    return matches[0].groups()
