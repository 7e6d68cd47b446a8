"""What the deploy gate hands `python -m verify`: the names of the environment variables both read.

The product owns this contract: the gate (components/verify_gate.py, model/gate_credentials.py)
writes the variables, `verify` reads them, and neither side imports the other.
"""

from __future__ import annotations

# The stack outputs, secrets included, as JSON: never on a command line, where `ps` shows them.
OUTPUTS_VARIABLE = "SECURE_QDRANT_OUTPUTS"
# JSON list of STS AssumeRole request parameters, applied in order, each with the previous role's
# keys: how the stack's provider reaches its account, which nothing in boto3 reads.
ASSUME_ROLES_VARIABLE = "SECURE_QDRANT_AWS_ASSUME_ROLES"
