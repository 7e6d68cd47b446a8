"""The lab's process plumbing."""

from lab.processes import ephemeral_ports, free_port


def test_free_ports_lie_outside_the_kernels_ephemeral_range():
    """A lab binds a chosen port seconds later; an ephemeral one could meanwhile be taken by any
    outgoing connection on the machine, and the lab would fail with "Address already in use"."""
    ephemeral = ephemeral_ports()
    chosen = [free_port() for _ in range(20)]
    assert [port for port in chosen if port in ephemeral] == []
