"""The stack's audit log settings reach Qdrant on the running host, in place.

`auditRotation` and `auditMaxLogFiles` travel in the host's configuration document (settings_env's
QDRANT_AUDIT_ENV, which converge maps to one Qdrant restart), never in the user data, whose change
would replace the host: tuning how long evidence is kept must not take the database down for a
first boot.
"""

from __future__ import annotations

import dataclasses

from model.host_config import config_source, host_config_document, render_host_config
from model.settings import QDRANT_AUDIT
from model.user_data import render_user_data, settings_env
from tests.host.test_user_data import HOST, VOLUME_ID

HOURLY = dataclasses.replace(
    HOST, audit=dataclasses.replace(QDRANT_AUDIT, rotation="hourly", max_log_files=720)
)


def test_the_configured_rotation_and_files_kept_are_what_qdrant_runs_with() -> None:
    """Not the defaults: the operator's values are the ones Qdrant's environment carries."""
    words = settings_env(HOURLY, VOLUME_ID)["QDRANT_AUDIT_ENV"].split()

    assert "QDRANT__AUDIT__ROTATION=hourly" in words
    assert "QDRANT__AUDIT__MAX_LOG_FILES=720" in words
    assert f"QDRANT__AUDIT__DIR={QDRANT_AUDIT.directory}" in words


def test_a_new_rotation_changes_the_configuration_document_and_not_the_user_data() -> None:
    """The document converges within a minute with one Qdrant restart; new user data would be a
    new instance."""
    source = config_source(HOST.region, "secure-qdrant-test-config", HOST.name)

    assert render_user_data(HOURLY, VOLUME_ID, source) == render_user_data(HOST, VOLUME_ID, source)
    before = host_config_document(render_host_config(HOST, VOLUME_ID))
    after = host_config_document(render_host_config(HOURLY, VOLUME_ID))
    assert before != after
    assert "QDRANT__AUDIT__ROTATION=hourly" in after
