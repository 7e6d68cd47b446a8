"""JWT claims and tokens for the configured callers, exactly as Qdrant v1.18 reads them.

Tokens are HS256, signed with the raw master API key string. They carry no `iat`, so the same config
and key always mint the same token and `pulumi up` shows no churn.
"""

from __future__ import annotations

from typing import Any

import jwt

from model.settings import (
    TOKEN_ALLOWLIST_COLLECTION,
    TOKEN_ID_KEY,
    TokenSpec,
    ValueExists,
    ValueMatch,
)


def token_claims(spec: TokenSpec) -> dict[str, Any]:
    """The claims of one token; `access` is always present (its absence means full manage).

    `subject` names the token's application: Qdrant writes a JWT's `subject` claim, a string
    (`src/common/auth/claims.rs`), into each audit log line (`lib/storage/src/audit.rs`). `sub` is
    not used: Qdrant reads it as an inference token, not as the audit's subject.
    """
    access: Any = (
        spec.access
        if isinstance(spec.access, str)
        else [{"collection": rule.collection, "access": rule.access} for rule in spec.access]
    )
    claims: dict[str, Any] = {"access": access, "subject": spec.name}
    if spec.expires_at is not None:
        claims["exp"] = int(spec.expires_at.timestamp())
    value_exists = allowlist_claim(spec) if spec.revocable else spec.value_exists
    if value_exists is not None:
        claims["value_exists"] = {
            "collection": value_exists.collection,
            "matches": [{"key": m.key, "value": m.value} for m in value_exists.matches],
        }
    return claims


def allowlist_claim(spec: TokenSpec) -> ValueExists:
    """A revocable token is valid while the allowlist holds a point with its name."""
    return ValueExists(TOKEN_ALLOWLIST_COLLECTION, (ValueMatch(TOKEN_ID_KEY, spec.name),))


def mint_token(claims: dict[str, Any], api_key: str) -> str:
    if "access" not in claims:
        raise ValueError("refusing to mint a token without `access`: Qdrant would grant manage")
    return jwt.encode(claims, api_key, algorithm="HS256")


def mint_tokens(specs: tuple[TokenSpec, ...], api_key: str) -> dict[str, str]:
    return {spec.name: mint_token(token_claims(spec), api_key) for spec in specs}
