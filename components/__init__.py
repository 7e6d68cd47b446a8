"""The secure-qdrant program's Pulumi side: the ComponentResources, and what reads Pulumi's runtime
(stack config, invokes) or is built from the components' own policies (the deployer policy).

Thin wiring over `model/`, where every renderer, validator and computation lives. Rule: imports
`model/` and Pulumi, nothing of `verify/`, `lab/`, `bench/` or `tests/` (tests/test_import_graph.py).
"""
