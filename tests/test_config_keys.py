"""The table of config keys (model/config_keys.py) is the one declaration of every setting:
the files rendered from it must be current, and what it declares must hold together, since the
reader, `Pulumi.yaml` and the docs all take it on trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import config_keys
from model.config import ConfigError, load_settings
from model.config_keys import (
    KEYS,
    REPO,
    TABLE_BEGIN,
    TABLE_END,
    WRITE_COMMAND,
    generated_files,
    with_table,
)
from model.images import HOST_IMAGES

REQUIRED = {"domain": "qdrant.example.com", "acmeEmail": "ops@example.com"}


GENERATED = generated_files()


@pytest.mark.parametrize("path", GENERATED, ids=lambda path: str(path.relative_to(REPO)))
def test_every_file_rendered_from_the_table_is_current(path: Path) -> None:
    """A stale table tells an operator a wrong default, bound or outage; a stale `Pulumi.yaml`
    hands the program a default the reader never declared."""
    stale = f"{path.relative_to(REPO)} is stale: run {WRITE_COMMAND}"
    assert path.read_text() == GENERATED[path], stale


def test_a_file_without_the_markers_is_refused_not_left_without_its_table() -> None:
    """A rewrite of the README that drops a marker must fail the generator, not lose the table
    silently or write it where nobody reads it."""
    for text in ("no markers\n", f"{TABLE_BEGIN}\nonly the first\n", f"{TABLE_END}\n"):
        with pytest.raises(ValueError, match="config-table"):
            with_table(text, "| table |\n")


def test_only_what_stands_between_the_markers_is_rewritten() -> None:
    """The prose around the table belongs to whoever writes the README."""
    text = f"before\n{TABLE_BEGIN}\n| old |\n{TABLE_END}\nafter\n"

    assert with_table(text, "| new |\n") == f"before\n{TABLE_BEGIN}\n| new |\n{TABLE_END}\nafter\n"


@pytest.mark.parametrize("key", [k for k in KEYS if k.type == "integer"], ids=lambda k: k.name)
def test_every_integer_key_declares_bounds_that_hold_its_default(key) -> None:
    """An unset key's default never passes through the reader's check, so it must lie within the
    bounds a set value is held to."""
    assert key.bounds is not None
    low, high = key.bounds
    assert isinstance(key.default, int) and low <= key.default <= high


@pytest.mark.parametrize("key", [k for k in KEYS if k.allowed], ids=lambda k: k.name)
def test_every_key_of_fixed_values_defaults_to_one_of_them(key) -> None:
    # An integer key's values are written as text, as the operator's YAML carries them.
    assert str(key.default) in key.allowed


def test_the_host_os_values_are_the_images_the_project_can_find() -> None:
    """A value the table allows but no image lookup knows would fail after resources exist."""
    [host_os] = [k for k in KEYS if k.name == "hostOs"]

    assert host_os.allowed == tuple(HOST_IMAGES)


@pytest.mark.parametrize("key", [k for k in KEYS if k.required], ids=lambda k: k.name)
def test_a_required_key_is_refused_when_unset(key) -> None:
    """The table's `required` is the reader's: `Pulumi.yaml` gives such a key no default, and the
    reader names it."""
    with pytest.raises(ValueError, match=f"secure-qdrant:{key.name}: is required"):
        load_settings({k: v for k, v in REQUIRED.items() if k != key.name})


def test_the_reader_requires_exactly_the_keys_the_table_declares_required() -> None:
    """A key the reader requires but `Pulumi.yaml` gives a default would never be asked for."""
    with pytest.raises(ConfigError) as refused:
        load_settings({})

    required = {p.split(":")[1] for p in refused.value.problems if p.endswith(": is required")}
    assert required == {k.name for k in KEYS if k.required}


def test_the_generator_command_names_a_stale_file_and_rewrites_it(tmp_path, monkeypatch, capsys):
    """The command the staleness failure names must fix what it names: check mode fails and
    writes nothing, `--write` makes every file current, after which the check passes."""
    for path in GENERATED:
        copy = tmp_path / path.relative_to(REPO)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("| `domain` |", "| `domain` | edited |", 1))
    monkeypatch.setattr(config_keys, "REPO", tmp_path)

    assert config_keys.main([]) == 1
    assert "| `domain` | edited |" in readme.read_text()
    assert config_keys.main(["--write"]) == 0
    assert config_keys.main([]) == 0
    assert readme.read_text() == GENERATED[REPO / "README.md"]
    assert capsys.readouterr().out == "stale: README.md\nrewrote: README.md\n"
