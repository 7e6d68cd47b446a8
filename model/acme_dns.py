"""DNS-01 in Route 53: what the instance role may do there, which is write its own challenge records.

Pure: the policy is text, so the tests judge the very document the program registers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# What certbot's Route 53 plugin sends (certbot-dns-route53, `_change_txt_record`): UPSERT to add a
# challenge, DELETE (or UPSERT of what is left) to clean up. CREATE is never needed.
CHALLENGE_ACTIONS = ("DELETE", "UPSERT")
CHANGE_KEYS = {
    "route53:ChangeResourceRecordSetsNormalizedRecordNames": "names",
    "route53:ChangeResourceRecordSetsRecordTypes": "types",
    "route53:ChangeResourceRecordSetsActions": "actions",
}
CHALLENGE_LABEL = "_acme-challenge."


def challenge_record_names(certificate_names: Iterable[str]) -> tuple[str, ...]:
    """The TXT records DNS-01 proves the names with: `_acme-challenge.<name>`, a wildcard's at its
    base name (RFC 8555, 8.4), written as Route 53's condition key compares them (lowercase, no
    trailing dot; the names are validated FQDNs, so no character needs Route 53's octal escape)."""
    return tuple(
        sorted({f"{CHALLENGE_LABEL}{name.removeprefix('*.')}" for name in certificate_names})
    )


def acme_dns_policy(zone_id: str, certificate_names: Iterable[str]) -> str:
    """IAM policy for certbot's Route 53 plugin on the host: change only the TXT challenge records
    of these names in this one zone, follow the change, and list zones (the plugin finds the zone id
    by listing; ListHostedZones takes no resource but `*`).

    `ForAllValues` makes every change of a batch match; the `Null` test refuses a request that
    carries no such keys at all, which `ForAllValues` alone would let through."""
    allowed = {
        "names": list(challenge_record_names(certificate_names)),
        "types": ["TXT"],
        "actions": list(CHALLENGE_ACTIONS),
    }
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteTheChallengeRecords",
                    "Effect": "Allow",
                    "Action": "route53:ChangeResourceRecordSets",
                    "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
                    "Condition": {
                        "ForAllValues:StringEquals": {
                            key: allowed[field] for key, field in CHANGE_KEYS.items()
                        },
                        "Null": {key: "false" for key in CHANGE_KEYS},
                    },
                },
                {
                    "Sid": "FollowTheChange",
                    "Effect": "Allow",
                    "Action": "route53:GetChange",
                    "Resource": "arn:aws:route53:::change/*",
                },
                {
                    "Sid": "FindTheZone",
                    "Effect": "Allow",
                    "Action": "route53:ListHostedZones",
                    "Resource": "*",
                },
            ],
        }
    )
