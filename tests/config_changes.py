"""What changing each config key does to the running host: the one declaration the README's
configuration table ("changing it") and the preview-equivalent mock runs are both held to.

"in place": `pulumi up` updates resources beside the host, or the instance itself without
replacing it (a new instance type is a stop, modify and start), or publishes a new configuration
document that the running host converges to within about a minute (cloud-init/converge.py), or
changes nothing on it.
"replaces the host": a new instance and a full first boot, during which the database is
unreachable; the data volume, the address and the certificate stay, unless the key is also in
`REPLACES_THE_DATA_VOLUME`.
"""

from __future__ import annotations

from tests.preview import IN_PLACE, REPLACES_THE_HOST, Verdict

CHANGING_IT: dict[str, Verdict] = {
    "domain": REPLACES_THE_HOST,
    "hostedZone": IN_PLACE,
    "acmeEmail": IN_PLACE,
    "acmeServer": IN_PLACE,
    "acmeChallenge": IN_PLACE,
    "certificateNames": IN_PLACE,
    "adminCidrs": IN_PLACE,
    "allowSshFromAnywhere": IN_PLACE,
    "instanceType": IN_PLACE,
    "architecture": REPLACES_THE_HOST,
    "hostOs": REPLACES_THE_HOST,
    "imageRelease": REPLACES_THE_HOST,
    "subnetId": REPLACES_THE_HOST,
    "dataVolumeSizeGb": IN_PLACE,
    "qdrantVersion": IN_PLACE,
    "rateLimitRps": IN_PLACE,
    "restBurst": IN_PLACE,
    "grpcBurst": IN_PLACE,
    "maxBodySizeMb": IN_PLACE,
    "credentialRateLimitRps": IN_PLACE,
    "credentialBurst": IN_PLACE,
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
