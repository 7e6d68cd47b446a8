"""The API keys from SSM into Qdrant's env file, for the bootstrap's secrets step:
fetch_keys.py REGION MASTER READ_ONLY PREVIOUS RUNNING_ENV_FILE TARGET WAIT_SECONDS BACKOFF_CAP.

The keys travel from SSM straight into TARGET (a 0600 file the bootstrap staged): never through a
shell variable, an argument list or a log line. Endpoint and credentials come from the standard AWS
environment (on the VM: the instance role through IMDS).

The instance may boot before the parameters exist or before its role's policy has propagated (IAM
is eventually consistent): a missing parameter, a denied read or not-yet-available credentials are
retried with backoff for WAIT_SECONDS, then it fails naming what it lacked.

During a rotation's grace window the master key it replaced is Qdrant's alt_api_key: that key and
the tokens it signed keep working until the window ends (the previous-key parameter's validUntil).
The replaced key is the one Qdrant runs with (the env file's), not necessarily the parameter's: a
version jump of two or more regenerates both of the program's slots, so the parameter then names a
key no host ever ran with. Once switched, the env file's alt key is the replaced one, so re-runs
keep it while the parameter's deadline is the one it was taken under (kept beside the env file): a
new deadline is a next rotation under way, which ends the older alt key's window. A host without an
env file (first boot, replacement) knows no running key and keeps the parameter's. No previous-key
parameter: no alt key.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

MASTER, ALT = "QDRANT__SERVICE__API_KEY", "QDRANT__SERVICE__ALT_API_KEY"
READ_ONLY = "QDRANT__SERVICE__READ_ONLY_API_KEY"
# Beside the env file: the previous-key deadline the env file's alt key was taken under.
ALT_UNTIL_SUFFIX = ".alt-until"

# The parameters' values by name, and what keeps any of them from being read ("" for nothing).
Fetched = tuple[dict[str, str], str]


def missing_problem(values: Mapping[str, str], wanted: Mapping[str, str]) -> str:
    missing = [name for name in wanted.values() if name not in values]
    return f"ParameterNotFound: {', '.join(missing)}" if missing else ""


def wait_for(
    fetch: Callable[[], Fetched],
    wait_seconds: int,
    backoff_cap: int,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """`fetch` until it reports no problem, doubling the delay up to `backoff_cap`; gives up (exit
    with the last problem) rather than sleep past `wait_seconds`."""
    deadline = clock() + wait_seconds
    delay = 1
    values, problem = fetch()
    while problem:
        if clock() + delay > deadline:
            sys.exit(
                f"secure-qdrant: gave up after {wait_seconds}s reading SSM parameters ({problem})"
            )
        print(
            f"secure-qdrant: SSM parameters not readable yet ({problem}); retrying in {delay}s",
            file=sys.stderr,
            flush=True,
        )
        sleep(delay)
        delay = min(delay * 2, backoff_cap)
        values, problem = fetch()
    return values


def key(value: object, name: str) -> str:
    # Qdrant 1.18 takes an empty string as a valid key; an env file cannot carry line breaks.
    if not isinstance(value, str) or not value or value != value.strip() or "\n" in value:
        sys.exit(f"secure-qdrant: SSM parameter {name} is empty or malformed")
    return value


def previous_key(document: str, name: str) -> tuple[str, int]:
    """The previous-key parameter's (apiKey, validUntil)."""
    try:
        parsed: Any = json.loads(document)
        return key(parsed["apiKey"], name), int(parsed["validUntil"])
    except (ValueError, TypeError, KeyError):
        sys.exit(f"secure-qdrant: SSM parameter {name} is malformed")


def parse_env(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.split("\n") if "=" in line)
    return {name: value for name, value in pairs}


def grace_key(
    master: str,
    previous: tuple[str, int],
    running: Mapping[str, str],
    taken_until: str | None,
    now: float,
) -> str | None:
    """The alt key Qdrant is to run with beside `master`, if any. `running` is the env file Qdrant
    runs with ({} before the first), `taken_until` the deadline its alt key was taken under (None
    when none was recorded)."""
    alt: str | None
    alt, until = previous
    if running and running.get(MASTER) != master:
        alt = running.get(MASTER)
    elif running:
        same_window = taken_until is not None and taken_until.strip() == str(until)
        alt = running.get(ALT) if same_window else None
    return alt if alt and now < until and alt != master else None


def render_env(keys: Mapping[str, str]) -> str:
    return "".join(f"{variable}={value}\n" for variable, value in keys.items())


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        return None


def main(argv: list[str]) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, NoCredentialsError

    region, master, read_only, previous, running_file, target, wait_seconds, backoff_cap = argv
    wanted = {MASTER: master, READ_ONLY: read_only}
    # botocore itself retries what is transient on the wire (network, throttling).
    retries = Config(retries={"mode": "standard", "max_attempts": 8})
    ssm = boto3.client("ssm", region_name=region, config=retries)

    def fetch() -> Fetched:
        try:
            found = ssm.get_parameters(Names=[*wanted.values(), previous], WithDecryption=True)
        except NoCredentialsError:
            return {}, "no credentials from the instance role yet"
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code != "AccessDeniedException":
                raise
            return {}, code
        values = {parameter["Name"]: parameter["Value"] for parameter in found["Parameters"]}
        return values, missing_problem(values, wanted)

    values = wait_for(fetch, int(wait_seconds), int(backoff_cap))
    keys = {variable: key(values.get(name), name) for variable, name in wanted.items()}
    if previous in values:
        replaced = previous_key(values[previous], previous)
        running_text = _read(running_file)
        running = {} if running_text is None else parse_env(running_text)
        taken_until = running_file + ALT_UNTIL_SUFFIX
        alt = grace_key(keys[MASTER], replaced, running, _read(taken_until), time.time())
        if alt:
            keys[ALT] = alt
            with open(taken_until, "w", encoding="utf-8") as deadline_file:
                deadline_file.write(f"{replaced[1]}\n")
    with open(target, "w", encoding="utf-8") as env_file:
        env_file.write(render_env(keys))


if __name__ == "__main__":
    main(sys.argv[1:])
