"""A final newline on every config key (issue 24, item 8: "test each key with `valid\\n`").

Python's `$` matches before a final newline, so a pattern check let values keep it, and they reached
AWS lookups, output keys and `settings.env`. tests/test_config_inputs.py tries each key of its
`VALID_TEXT` table; this adds the keys that table leaves out (the numbers, and `certificateNames`,
whose names sit inside a JSON list where a newline travels with a name), and holds every key of the
reader to one of the two.
"""

from __future__ import annotations

import pytest

from model.config import KNOWN_KEYS, NAMESPACE, ConfigError
from tests.test_config_inputs import NUMBER_RANGES, VALID_TEXT, load

# certificateNames is read only with DNS-01, which needs the hosted zone its names sit in.
DNS_01 = {"acmeChallenge": "dns-01", "hostedZone": "example.com"}
# A valid value of each key VALID_TEXT leaves out, with the other keys it needs to be read.
OTHER_KEYS = {
    **{key: (str(low), {}) for key, (low, _) in NUMBER_RANGES.items()},
    "certificateNames": ('["other.example.com", "*.example.com"]', DNS_01),
}
# The same value with a final newline: after the value, or inside a name of the list.
WITH_NEWLINE = [(key, valid + "\n", context) for key, (valid, context) in OTHER_KEYS.items()] + [
    ("certificateNames", '["other.example.com\\n", "*.example.com"]', DNS_01),
    ("certificateNames", '["other.example.com", "*.example.com\\n"]', DNS_01),
]


def test_every_key_is_tried_with_a_final_newline():
    """A key no newline test tries is one a `$` could slip a newline past again."""
    assert set(VALID_TEXT) | set(OTHER_KEYS) == KNOWN_KEYS


@pytest.mark.parametrize(("key", "value", "context"), WITH_NEWLINE)
def test_a_final_newline_on_the_other_keys_is_refused_or_changes_nothing(
    key: str, value: str, context: dict[str, str]
):
    """Refused naming the key, or read as the value without it: never kept, where it would reach
    the certificate's names, the challenge records' names and the instance role's policy."""
    valid, _ = OTHER_KEYS[key]
    try:
        accepted = load(**context, **{key: value})
    except ConfigError as refused:
        assert any(p.startswith(f"{NAMESPACE}:{key}: ") for p in refused.problems), refused
    else:
        assert accepted == load(**context, **{key: valid})
