"""The documentation as a reader copies it: the README's code blocks, tables and sentences, and
those of the documents under docs/ that the README sends its reader on to."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
README = REPOSITORY / "README.md"
DOCS = REPOSITORY / "docs"
SECURITY_MODEL = DOCS / "security-model.md"
OPERATIONS = DOCS / "operations.md"
DEPLOYER_POLICY = DOCS / "deployer-policy.md"
TESTING = DOCS / "testing.md"


def python_block(marker: str, doc: Path = README) -> str:
    """The one ```python block of `doc` that contains `marker`, verbatim."""
    return code_block("python", marker, doc)


def code_block(language: str, marker: str, doc: Path = README) -> str:
    """The one block of `language` in `doc` that contains `marker`, verbatim."""
    blocks = re.findall(rf"```{language}\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if marker in block]
    return block


def config_row(key: str, doc: Path = README) -> str:
    """The configuration table's row of `key`."""
    [row] = [line for line in doc.read_text().splitlines() if line.startswith(f"| `{key}` |")]
    return row


def section_table(heading: str, doc: Path = README) -> list[dict[str, str]]:
    """The first table under the `## ` heading that starts with `heading`: one dict per row, keyed
    by the header's cells, each cell stripped, its backticks kept."""
    [section] = re.findall(
        rf"^## {re.escape(heading)}.*?(?=^## |\Z)", doc.read_text(), flags=re.M | re.S
    )
    [table] = re.findall(r"^(\|.*?)\n(?!\|)", section, flags=re.M | re.S)[:1]
    header, _rule, *rows = [_cells(line) for line in table.splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def _cells(line: str) -> list[str]:
    # Table cells here hold no escaped pipes.
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def prose(doc: Path = README) -> str:
    """`doc` with line breaks and indentation read as one space."""
    return " ".join(doc.read_text().split())


def stated(claim: str, doc: Path = README) -> tuple[str, ...]:
    """What `doc` says where the regular expression `claim` matches its prose (line breaks and
    indentation read as one space): the groups of its one match."""
    matches = list(re.finditer(claim, prose(doc)))
    where = doc.relative_to(REPOSITORY)
    assert len(matches) == 1, f"{where} states {claim!r} {len(matches)} times, not once"
    return matches[0].groups()
