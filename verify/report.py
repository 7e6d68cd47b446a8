"""Reports for people (a table) and for machines (JSON), with the credentials blanked out.

The checks never put a credential in their evidence; the report redacts anyway, because evidence
quotes what servers said, and a misconfigured server may echo a header back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from verify.result import CheckResult, Status

REDACTED = "[redacted]"


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every credential that stands as a whole word replaced by REDACTED.

    A whole word: neither the character before it nor the one after it is a letter, a digit or `_`
    (so `Bearer <jwt>`, `"api-key":"<key>"` and `?key=<key>&` are all caught). A credential inside a
    longer word is that word's own letters, never an echoed credential: replacing it there would
    mangle ordinary text ("answer" around a one-letter key) and prove nothing. One pass, longest
    credential first, so REDACTED itself is never rescanned and a credential containing another is
    replaced whole.
    """
    values = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not values:
        return text
    alternatives = "|".join(re.escape(value) for value in values)
    return re.sub(rf"(?<!\w)(?:{alternatives})(?!\w)", REDACTED, text)


def failed(results: Sequence[CheckResult]) -> bool:
    return any(result.status is Status.FAIL for result in results)


def summary(results: Sequence[CheckResult]) -> str:
    # WARN only when there is one: a report without warnings reads as it always has.
    shown = [s for s in Status if s is not Status.WARN or any(r.status is s for r in results)]
    counts = ", ".join(f"{sum(r.status is s for r in results)} {s.value}" for s in shown)
    return f"verify: {'FAILED' if failed(results) else 'passed'} ({counts})"


def table(results: Sequence[CheckResult], secrets: Sequence[str]) -> str:
    width = max((len(r.name) for r in results), default=0)
    lines = [f"{r.status.value:4}  {r.name:{width}}  {redact(r.detail, secrets)}" for r in results]
    return "\n".join([*lines, summary(results)])


def as_json(results: Sequence[CheckResult], secrets: Sequence[str]) -> str:
    return json.dumps(
        {
            "passed": not failed(results),
            "checks": [
                {"name": r.name, "status": r.status.value, "detail": redact(r.detail, secrets)}
                for r in results
            ],
        },
        indent=2,
    )
