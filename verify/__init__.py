"""`verify`: the hardening guide's security checks, run against a deployed stack."""
