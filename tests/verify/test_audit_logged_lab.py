"""`audit-logged` on real lines: verify's own request goes through the real edge (Debian's nginx
running the rendered site) to the Qdrant double, which writes Qdrant's audit line; the line is then
put in moto's CloudWatch Logs as the host's shipper would, and the check reads it from there.

The lab's client is on loopback (verify cannot choose its source address), so the line's address is
::1 and the check must say so; a client with an address of its own (the booted lab's namespaces, a
deployment) is what passes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import boto3
import pytest
from moto import mock_aws

from lab.edge import UNTHROTTLED, EdgeLab, running_edge_lab
from lab.processes import LabUnavailable
from model.settings import AccessRule, TokenSpec
from tests.lab.test_qdrant_double_audit import lines
from verify.audit_log import audited_request, check_audit_logged
from verify.result import Status
from verify.target import Target, Token

GROUP = "/secure-qdrant/lab/audit"
READER = TokenSpec("search-api", (AccessRule("products", "r"),))


@pytest.fixture(scope="module")
def lab() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        try:
            yield stack.enter_context(running_edge_lab(limits=UNTHROTTLED))
        except LabUnavailable as missing:
            pytest.skip(f"loopback lab unavailable: {missing}")


def test_verifys_request_is_found_by_its_tracing_id_and_names_the_application(lab):
    """The edge passes verify's `x-request-id` to Qdrant untouched, so the check can find its own
    line among every other client's; the line names the token's application."""
    target = dataclasses.replace(lab.verify_target((READER,)), audit_log_group=GROUP)
    shipped: list[str] = []

    def request_and_ship(target: Target, token: Token) -> str:
        tracing_id = audited_request(target, token)
        for line in lines(lab.qdrant):
            if line.get("tracing_id") == tracing_id:
                shipped.append(json.dumps(line))
        stamp = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName="lab",
            logEvents=[{"timestamp": stamp, "message": message} for message in shipped],
        )
        return tracing_id

    with mock_aws():
        logs = boto3.client("logs", region_name="eu-west-1")
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName="lab")
        result = check_audit_logged(target, lambda: logs, seconds=0, request=request_and_ship)

    assert len(shipped) == 1, "one access-checked request, one line"
    line = json.loads(shipped[0])
    assert (line["subject"], line["auth_type"]) == ("search-api", "jwt")
    assert result.status == Status.FAIL
    assert result.detail.startswith("remote '::1'"), result.detail
    assert "subject" not in result.detail and "timestamp" not in result.detail
