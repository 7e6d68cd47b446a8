"""The boto3 session `verify` audits with: the environment's credentials, then the roles to assume.

The deploy gate describes how the stack authenticated in environment variables (see
`model/gate_credentials.py`): boto3's own variables for profiles, files and keys, and the list
of STS AssumeRole requests in ASSUME_ROLES_VARIABLE, which nothing in boto3 reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import boto3

from model.gate_environment import ASSUME_ROLES_VARIABLE


def aws_session(region: str | None, environ: Mapping[str, str]) -> boto3.Session:
    """A session for `region` with the environment's credentials, after assuming every listed role.

    Credentials themselves come from boto3's usual chain (which reads `os.environ`); `environ` only
    supplies the roles. Raises botocore's errors: the caller decides what each one means.
    """
    session = boto3.Session(region_name=region)
    for request in json.loads(environ.get(ASSUME_ROLES_VARIABLE) or "[]"):
        credentials = session.client("sts").assume_role(**request)["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
    return session
