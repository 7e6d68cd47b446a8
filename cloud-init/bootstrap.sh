#!/usr/bin/env bash
# Builds the locked-down Qdrant host from settings.env. Idempotent: a re-run changes nothing.
set -euo pipefail

SETTINGS=${SECURE_QDRANT_SETTINGS:-/etc/secure-qdrant/settings.env}
# shellcheck source=/dev/null
. "$SETTINGS"

log() { echo "secure-qdrant: $*" | tee /dev/stderr | logger -t secure-qdrant 2>/dev/null || true; }

log "bootstrap not yet implemented beyond settings"
