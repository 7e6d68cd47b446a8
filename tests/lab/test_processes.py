"""The lab's process plumbing."""

from lab.processes import ephemeral_ports, free_port


def test_free_ports_lie_outside_the_kernels_ephemeral_range():
    """A lab binds a chosen port seconds later; an ephemeral one could meanwhile be taken by any
    outgoing connection on the machine, and the lab would fail with "Address already in use"."""
    ephemeral = ephemeral_ports()
    chosen = [free_port() for _ in range(20)]
    assert [port for port in chosen if port in ephemeral] == []


def test_a_port_is_never_handed_out_twice(monkeypatch):
    """A lab chooses all its ports before it binds any: a port chosen twice is free both times, and
    the second server to bind it fails with "Address already in use" (a CI run lost a test so)."""
    first = free_port()
    offered = iter([first, first, first])
    monkeypatch.setattr("lab.processes.random.choice", lambda candidates: next(offered, 0))
    assert free_port() != first
