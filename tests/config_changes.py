"""What changing each config key does to the running host: the one declaration the README's
configuration table ("changing it") and the preview-equivalent mock runs are both held to.

"in place": `pulumi up` updates resources beside the host, or the instance itself without
replacing it (a new instance type is a stop, modify and start), or changes nothing on it.
"replaces the host": a new instance and a full first boot, during which the database is
unreachable; the data volume, the address and the certificate stay, unless the key is also in
`REPLACES_THE_DATA_VOLUME`.
"""

from __future__ import annotations

from tests.preview import IN_PLACE, REPLACES_THE_HOST, Verdict

CHANGING_IT: dict[str, Verdict] = {
    "domain": REPLACES_THE_HOST,
    "hostedZone": IN_PLACE,
    "acmeEmail": REPLACES_THE_HOST,
    "acmeServer": REPLACES_THE_HOST,
    "acmeChallenge": REPLACES_THE_HOST,
    "certificateNames": REPLACES_THE_HOST,
    "adminCidrs": REPLACES_THE_HOST,
    "allowSshFromAnywhere": IN_PLACE,
    "instanceType": IN_PLACE,
    "architecture": REPLACES_THE_HOST,
    "hostOs": REPLACES_THE_HOST,
    "imageRelease": REPLACES_THE_HOST,
    "subnetId": REPLACES_THE_HOST,
    "dataVolumeSizeGb": REPLACES_THE_HOST,
    "qdrantVersion": REPLACES_THE_HOST,
    "rateLimitRps": REPLACES_THE_HOST,
    "restBurst": REPLACES_THE_HOST,
    "grpcBurst": REPLACES_THE_HOST,
    "maxBodySizeMb": REPLACES_THE_HOST,
    "credentialRateLimitRps": REPLACES_THE_HOST,
    "credentialBurst": REPLACES_THE_HOST,
    "tokens": IN_PLACE,
    "apiKeyVersion": IN_PLACE,
    "keyGraceHours": IN_PLACE,
    "verifyOnDeploy": IN_PLACE,
    "rolePermissionsBoundary": IN_PLACE,
    "backupSchedule": IN_PLACE,
    "backupRetentionDays": IN_PLACE,
    "restoreFromSnapshotId": REPLACES_THE_HOST,
    "alertEmail": IN_PLACE,
    "alarmCertificateDaysLeft": IN_PLACE,
    "alarmQdrantDownMinutes": IN_PLACE,
    "alarmUnauthorizedPerMinute": IN_PLACE,
    "alarmDataVolumeUsedPercent": IN_PLACE,
}

# Keys whose change makes a new data volume too (the old one is protected: `pulumi up` stops
# until the operator unprotects it). Never in place.
REPLACES_THE_DATA_VOLUME = frozenset({"subnetId", "restoreFromSnapshotId"})
