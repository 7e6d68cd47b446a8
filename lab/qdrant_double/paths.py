"""REST paths: canonicalization, and the paths (and pages) served without credentials."""

from __future__ import annotations

import json
import posixpath
import re
from urllib.parse import unquote, urlsplit

from lab.qdrant_double.config import TITLE


def canonical_path(target: str) -> str:
    """The path Qdrant >= 1.18.2 authorizes: percent-decoded, slashes collapsed, dot segments
    resolved. The whitelist and the router both use it, so they cannot disagree."""
    if not target.startswith("/"):
        target = urlsplit(target).path  # absolute-form request target
    path = target.split("?", 1)[0].split("#", 1)[0]
    return posixpath.normpath(re.sub(r"/+", "/", "/" + unquote(path)))


WEB_UI_PATH = "/dashboard"


def is_public_path(path: str, static_content: bool = True) -> bool:
    """Qdrant's unauthenticated REST paths (applied to a canonical path). The web UI joins them
    only while static content is enabled; otherwise `/dashboard` needs a credential like any path
    and then finds no route."""
    if static_content and path.startswith(WEB_UI_PATH):
        return True
    return path in ("/", "/healthz") or path.startswith(("/readyz", "/livez"))


def _public_page(path: str, version: str) -> tuple[str, bytes] | None:
    if path == "/":
        return "application/json", json.dumps({"title": TITLE, "version": version}).encode()
    texts = {
        "/healthz": "healthz check passed",
        "/livez": "livez check passed",
        "/readyz": "all shards are ready",
    }
    if path in texts:
        return "text/plain; charset=utf-8", texts[path].encode()
    if path == WEB_UI_PATH or path.startswith(f"{WEB_UI_PATH}/"):
        return "text/html; charset=utf-8", b"<!doctype html><title>qdrant double</title>"
    return None
