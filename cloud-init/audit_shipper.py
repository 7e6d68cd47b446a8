"""Qdrant's audit lines to CloudWatch Logs, every minute (secure-qdrant-audit-shipper.timer):
audit_shipper.py SETTINGS.

Reads Qdrant's rotated audit files on the data volume (`audit.YYYY-MM-DD[-HH].log`) oldest first,
sends their complete lines in order, in batches within PutLogEvents' limits, and after each
accepted batch records how far it got (file name, inode, byte offset) in a state file on the same
volume, written atomically. A run that cannot reach CloudWatch fails and leaves the position
where the last accepted batch put it: the next run sends the rest, so an outage or a reboot loses
no line and sends none twice. A file is finished (its last line too) before the next one is
started. At least once, not exactly once: a batch CloudWatch accepted whose answer never arrived
is sent again.
"""

import datetime as dt
import json
import os
import re
import shlex
import sys
from typing import Any, TypedDict

# CloudWatch Logs API Reference, PutLogEvents: a batch is at most 1,048,576 bytes, counted as its
# messages in UTF-8 plus 26 bytes each, at most 10,000 events, in chronological order, spanning at
# most 24 hours; an event at most 256 KB (the older, smaller of the figures AWS has published).
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
MAX_EVENT_BYTES = 262_144
# tracing-appender's names with Qdrant's prefix and suffix (lib/storage/src/audit.rs).
AUDIT_FILE = re.compile(r"audit\.(\d{4}-\d{2}-\d{2})(-\d{2})?\.log")


class Position(TypedDict):
    file: str
    inode: int
    offset: int


Line = tuple[str, int]
Event = dict[str, Any]


def read_settings(text: str) -> dict[str, str]:
    return dict(shlex.split(line)[0].split("=", 1) for line in text.splitlines() if "=" in line)


def order_key(name: str) -> tuple[str, str]:
    """Oldest first: the date, then the hour (a daily file counts as the day's first hour, which
    puts it first when the rotation turns hourly during the day)."""
    match = AUDIT_FILE.fullmatch(name)
    assert match, name
    return match[1], match[2] or "-00"


def audit_files(names: list[str]) -> list[str]:
    return sorted((name for name in names if AUDIT_FILE.fullmatch(name)), key=order_key)


def pending(files: list[tuple[str, int]], position: Position | None) -> list[tuple[str, int, int]]:
    """What is left to send: [(name, inode, start offset)], oldest first. `files`: [(name,
    inode)] of the directory; `position`: the state's {"file", "inode", "offset"}, or None before
    the first line was sent. A file under the recorded name with another inode is another file
    (recreated after a restore): it is sent from its start. A recorded file that is gone (pruned by
    Qdrant) is passed over, the files named after it sent whole."""
    ordered = sorted(files, key=lambda file: order_key(file[0]))
    if position is None:
        return [(name, inode, 0) for name, inode in ordered]
    recorded = order_key(position["file"])
    left: list[tuple[str, int, int]] = []
    for name, inode in ordered:
        if name == position["file"] and inode == position["inode"]:
            left.append((name, inode, position["offset"]))
        elif order_key(name) >= recorded:
            left.append((name, inode, 0))
    return left


def complete_lines(data: bytes, start: int, finished: bool) -> list[Line]:
    """[(message, end offset)] of `data` (the file's bytes from `start`): each line ended by a
    newline, and in a finished file the last one without it. An unfinished last line is left for
    the next run (Qdrant may be writing it); blank lines are skipped (CloudWatch takes no empty
    message) but passed over."""
    lines: list[Line] = []
    offset = 0
    while offset < len(data):
        newline = data.find(b"\n", offset)
        if newline < 0:
            if not finished:
                break
            end = len(data)
        else:
            end = newline + 1
        text = data[offset:end].rstrip(b"\r\n").decode("utf-8", errors="replace")
        if text.strip():
            lines.append((text, start + end))
        offset = end
    return lines


def fitted(message: str) -> str:
    """A message within an event's limit: a longer line is cut (on a character boundary) rather
    than refused, which would stop every line after it."""
    data = message.encode()
    limit = MAX_EVENT_BYTES - EVENT_OVERHEAD
    return message if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


def timestamp_ms(message: str, fallback: int) -> int:
    """The line's own `timestamp` (RFC 3339, UTC), in milliseconds; `fallback` for a line that has
    none."""
    try:
        moment = dt.datetime.fromisoformat(json.loads(message)["timestamp"].replace("Z", "+00:00"))
        return int(moment.timestamp() * 1000)
    except (ValueError, KeyError, TypeError, AttributeError):
        return fallback


def batches(lines: list[Line], now_ms: int) -> list[tuple[list[Event], int]]:
    """`lines` ([(message, end offset)]) as PutLogEvents batches: [([{"timestamp", "message"}],
    end offset of the batch's last line)]. Timestamps never go back (Qdrant's threads may write a
    line a millisecond older than the one before it; CloudWatch refuses a batch out of order)."""
    result: list[tuple[list[Event], int]] = []
    events: list[Event] = []
    size, last, previous_end = 0, 0, 0
    for message, end in lines:
        message = fitted(message)
        moment = max(timestamp_ms(message, now_ms), last)
        cost = len(message.encode()) + EVENT_OVERHEAD
        if events and (
            len(events) == MAX_BATCH_EVENTS
            or size + cost > MAX_BATCH_BYTES
            or moment - events[0]["timestamp"] > MAX_BATCH_SPAN_MS
        ):
            result.append((events, previous_end))
            events, size = [], 0
        events.append({"timestamp": moment, "message": message})
        size += cost
        last, previous_end = moment, end
    if events:
        result.append((events, previous_end))
    return result


def load_position(path: str) -> Position | None:
    try:
        with open(path, encoding="utf-8") as state:
            position: Position = json.load(state)
            return position
    except FileNotFoundError:
        return None


def save_position(path: str, position: Position) -> None:
    """Atomically: the state is the old or the new position, never a torn one, whatever stops the
    host (write, flush to disk, rename, flush the directory)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as state:
        json.dump(position, state)
        state.flush()
        os.fsync(state.fileno())
    os.replace(temporary, path)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def ensure_stream(logs: Any, group: str, stream: str) -> None:
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass


def ship(logs: Any, env: dict[str, str], now_ms: int) -> int:
    """Sends everything not yet sent; returns how many lines. Raises when CloudWatch does (the
    position stays at the last accepted batch)."""
    directory, state = env["AUDIT_DIR"], env["AUDIT_SHIPPER_STATE"]
    group, stream = env["AUDIT_LOG_GROUP"], env["AUDIT_LOG_STREAM"]
    try:
        names = audit_files(os.listdir(directory))
    except FileNotFoundError:
        return 0
    files = [(name, os.stat(os.path.join(directory, name)).st_ino) for name in names]
    left = pending(files, load_position(state))
    if not left:
        return 0
    ensure_stream(logs, group, stream)
    sent = 0
    for index, (name, inode, start) in enumerate(left):
        with open(os.path.join(directory, name), "rb") as audit:
            audit.seek(start)
            data = audit.read()
        finished = index < len(left) - 1
        for events, end in batches(complete_lines(data, start, finished), now_ms):
            answer = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            rejected = answer.get("rejectedLogEventsInfo")
            if rejected:
                # Older than 14 days or the retention, or too far ahead: CloudWatch will never take
                # them; the rest of the batch is stored. Said here, never retried.
                print(f"CloudWatch refused some of {name}'s lines: {rejected}", file=sys.stderr)
            save_position(state, Position(file=name, inode=inode, offset=end))
            sent += len(events)
    return sent


if __name__ == "__main__":
    import boto3

    with open(sys.argv[1]) as file:
        env = read_settings(file.read())
    logs = boto3.client("logs", region_name=env["AWS_REGION"])
    count = ship(logs, env, int(dt.datetime.now(dt.UTC).timestamp() * 1000))
    print(f"shipped {count} audit lines")
