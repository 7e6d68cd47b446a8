"""Every stack output `verify` reads, one at a time, as a broken or hostile stack could hand it: on
top of the outputs the program itself exports, one output is replaced by any JSON value or removed.
`verify` then runs or exits 2 with one line naming what is wrong, never a traceback (exit 1, "a
check failed", and possibly the outputs it was reading, credentials included).

The outputs fuzzed are found, not listed: every key `target_from_outputs` asks the outputs for, so
an output a later release makes `verify` read (as `configVersion`, `configBucket` and
`configStatusKey` were after the first fuzz of issue 24) is fuzzed from the day it is read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from model.gate_environment import OUTPUTS_VARIABLE
from tests.program import MINIMAL_CONFIG, deploy
from tests.verify.test_verify_inputs import assert_ran_or_refused, json_values, run_verify
from verify.target import target_from_outputs

# Stands for an output the stack does not export.
ABSENT = object()


class RecordingOutputs(dict[str, Any]):
    """Stack outputs that note every key read from them, present or not."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        super().__init__(outputs)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)


def program_outputs() -> dict[str, Any]:
    """What `pulumi stack output --json --show-secrets` gives for a minimal stack, under mocks."""
    return {key: output.value for key, output in deploy(dict(MINIMAL_CONFIG)).outputs.items()}


PROGRAM_OUTPUTS = program_outputs()


def outputs_verify_reads() -> list[str]:
    outputs = RecordingOutputs(PROGRAM_OUTPUTS)
    target_from_outputs(outputs)
    return sorted(outputs.read)


READ = outputs_verify_reads()


def test_verify_takes_the_programs_own_outputs():
    """The base every case below changes one output of must itself pass: otherwise every case
    would be refused for the same unrelated reason, and the fuzz would judge nothing."""
    status, stdout, stderr = run_verify([], {OUTPUTS_VARIABLE: json.dumps(PROGRAM_OUTPUTS)})

    assert (status, stderr) == (0, ""), stderr
    assert stdout.startswith("verify: passed")


def test_the_outputs_verify_reads_include_the_configuration_document_and_the_credentials():
    """The finder finds what a reader of `target_from_outputs` sees it read."""
    expected = {"restUrl", "apiKey", "tokens", "configVersion", "configBucket", "configStatusKey"}
    assert expected <= set(READ)


@given(key=st.sampled_from(READ), value=json_values | st.just(ABSENT))
@settings(max_examples=400, deadline=None)
@example(key="configVersion", value=10**4000)
@example(key="configVersion", value="")
@example(key="configBucket", value=ABSENT)
@example(key="configBucket", value=["[" * 50])
@example(key="configStatusKey", value="hosts/x\r\nstatus.json")
@example(key="configStatusKey", value=None)
@example(key="restUrl", value="https://qdrant.example.com:0")
@example(key="apiKey", value="k\r\nX-Injected: 1")
@example(key="readOnlyApiKey", value="ключ")
def test_any_value_of_any_output_verify_reads_runs_or_exits_2_in_one_line(key: str, value: Any):
    """A deploy gate that dies with a traceback says neither which output is wrong nor that the
    host was never checked."""
    outputs = {k: v for k, v in PROGRAM_OUTPUTS.items() if k != key}
    if value is not ABSENT:
        outputs[key] = value

    assert_ran_or_refused(*run_verify([], {OUTPUTS_VARIABLE: json.dumps(outputs)}))


@pytest.mark.parametrize("key", ["configBucket", "configStatusKey"])
def test_a_configuration_version_without_where_to_read_it_is_refused_naming_the_output(key: str):
    """With `configVersion` set, the gate reads the host's report from `configBucket` at
    `configStatusKey`: without either it cannot, and says which is missing."""
    outputs = {k: v for k, v in PROGRAM_OUTPUTS.items() if k != key}

    status, stdout, stderr = run_verify([], {OUTPUTS_VARIABLE: json.dumps(outputs)})

    assert (status, stdout) == (2, "")
    assert stderr.splitlines() == [stderr.strip()] and key in stderr
