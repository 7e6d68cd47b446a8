"""The README is the deployer's front door, and every document it sends a reader to exists.

A newcomer must find what the stack deploys, what it costs, how to start and how to connect an app
within the README's first screens; everything else lives in docs/, one file per audience. A link
that leads nowhere, or a price without its source, sends an operator to act on nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.readme import DOCS, README, REPOSITORY, SECURITY_MODEL

CHANGELOG = REPOSITORY / "CHANGELOG.md"
UPGRADING = DOCS / "upgrading.md"
DOCUMENTS = sorted([README, CHANGELOG, *DOCS.glob("*.md")])
README_MAX_LINES = 250
# The README's `## ` sections, in the order a deployer needs them.
README_SECTIONS = (
    "What it deploys",
    "What it costs",
    "Prerequisites",
    "Quick start",
    "Connect an app",
    "Configuration",
    "Outputs",
    "Further reading",
)
# Regions written by a generator, which keeps them right (issue 20's configuration table).
GENERATED = re.compile(r"<!-- config-table:begin -->.*?<!-- config-table:end -->", re.S)
FENCED = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ISO_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def sections(text: str) -> list[str]:
    """The `## ` headings of a Markdown text, outside code blocks."""
    return re.findall(r"^## (.+)$", FENCED.sub("", text), flags=re.M)


def section(text: str, heading: str) -> str:
    """The body of the `## ` section whose heading starts with `heading`."""
    [body] = re.findall(rf"^## {re.escape(heading)}.*?(?=^## |\Z)", text, flags=re.M | re.S)
    return body


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings of `document`: lower case, punctuation dropped, spaces
    as hyphens, a repeated heading numbered from -1."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#+ (.+)$", FENCED.sub("", document.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(document: Path) -> list[tuple[str, bool]]:
    """Every relative link of `document` outside code blocks, and whether it lies in a generated
    region."""
    text = FENCED.sub("", document.read_text())
    generated_spans = [match.span() for match in GENERATED.finditer(text)]
    return [
        (match.group(1), any(start <= match.start() < end for start, end in generated_spans))
        for match in LINK.finditer(text)
        if not re.match(r"[a-z]+:", match.group(1))
    ]


def test_the_readme_fits_a_few_screens():
    """Issue 20: a README of about 200 lines; past this bound it is a manual again, and the deploy
    instructions slide out of the first screens."""
    lines = len(README.read_text().splitlines())

    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


def test_the_readme_sections_come_in_the_deployers_order():
    """What it deploys, what it costs, how to start, how an app connects, then the settings: the
    order in which a deployer decides, so nothing they need first sits below reference material."""
    headings = sections(README.read_text())

    assert [h for h in headings if h.startswith(README_SECTIONS)] == headings
    assert [next(s for s in README_SECTIONS if h.startswith(s)) for h in headings] == list(
        README_SECTIONS
    )


def test_the_readme_shows_the_architecture_as_a_rendered_diagram():
    """A reader sees the whole before the parts: a Mermaid block, which GitHub renders, under
    "What it deploys"."""
    assert "```mermaid\nflowchart" in section(README.read_text(), "What it deploys")


def test_every_price_in_the_readme_names_its_source_and_date():
    """Prices change and differ by region: a figure without the page and the date it came from
    cannot be checked, and would read as a promise."""
    rows = [
        line
        for line in section(README.read_text(), "What it costs").splitlines()
        if line.startswith("|") and "USD" in line
    ]

    assert rows, "the cost section quotes no price"
    for row in rows:
        source = row.rstrip(" |").rsplit("|", 1)[1]
        assert "page" in source or "quotes" in source, row
        assert ISO_DATE.search(source), row


def test_the_quick_start_says_how_long_it_takes_from_a_measured_figure():
    """An expected duration the deployer can plan a window around, taken from the measured first
    boots in docs/performance.md, not a guess."""
    quick_start = " ".join(section(README.read_text(), "Quick start").split())
    duration = re.search(r"took ([\d.]+) to ([\d.]+) s", quick_start)
    assert duration, "the quick start gives no measured duration"
    low, high = map(re.escape, duration.groups())
    performance = " ".join((DOCS / "performance.md").read_text().split())

    assert re.search(rf"\| first boot to ready \| {low}, .*?, {high} \|", performance)
    assert "docs/performance.md#booted-host" in quick_start


def test_the_security_model_names_and_links_the_hardening_guide():
    """The project automates a published guide; a reviewer must find which, and how each of its
    steps is done and checked here."""
    model = SECURITY_MODEL.read_text()
    guide = section(model, "The hardening guide this project automates")

    assert "*Secure Qdrant with API Key, TLS, and Nginx Reverse Proxy*" in guide
    assert "](https://computingforgeeks.com/" in guide
    assert "| the guide's step | done here by | verified by" in guide
    assert "(docs/security-model.md)" in README.read_text()


def test_upgrades_are_told_in_docs_upgrading_not_the_readme():
    """What a stack of an earlier release must do lives in one place, next to the changelog: the
    README only links it."""
    readme = README.read_text()
    before_links = readme[: readme.index("## Further reading")]
    assert "earlier release" not in before_links
    assert "(docs/upgrading.md)" in section(readme, "Further reading")
    assert "## From a release whose user data carried the whole host" in UPGRADING.read_text()
    assert "(upgrading.md)" in (DOCS / "operations.md").read_text()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document: Path):
    """A moved section leaves links behind: each must reach an existing file and, when it names
    one, a heading of it. Anchors inside a generated region are its generator's to keep right."""
    broken = []
    for link, generated in relative_links(document):
        path, _, anchor = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        if not target.exists():
            broken.append(link)
        elif anchor and not generated and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(link)

    assert broken == []
