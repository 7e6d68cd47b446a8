"""What the TLS edge costs: the same backend measured direct, behind the hardening guide's Nginx
config and behind this project's, on loopback. Run `python -m bench.edge --help`; results and the
method are in docs/performance.md. A script, not a test: nothing here asserts a timing.
"""
