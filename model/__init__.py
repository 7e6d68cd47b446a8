"""What a secure-qdrant stack is and what its host runs, as data and pure functions.

The settings and their validation, the host's files (user data, nginx site, host configuration
document), the tokens, the image and instance-type tables, the AWS environment of the deploy gate
and the names it shares with `verify`. Rule: no Pulumi and nothing of `components/`, `verify/`,
`lab/`, `bench/` or `tests/` (tests/test_import_graph.py holds it), so that every renderer and
validator is tested directly, and the checks and the lab read the very values the VM gets.
"""
