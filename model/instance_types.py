"""Which CPU architecture an EC2 instance type runs, and whether EC2 can recover it, known offline
so bad config fails before AWS is asked.

The table lists the current-generation families that can host Qdrant (burstable, general purpose,
compute, memory and storage optimised). A family missing here is refused with a message rather
than guessed at: an AMI of the wrong architecture would only fail minutes into `pulumi up`.
"""

from __future__ import annotations

import re

from model.settings import Architecture

_ARM64_FAMILIES = frozenset(
    "a1 t4g m6g m6gd m7g m7gd m8g m8gd c6g c6gd c6gn c7g c7gd c7gn c8g r6g r6gd r7g r7gd r8g "
    "x2gd im4gn is4gen i4g i8g".split()
)
_X86_64_FAMILIES = frozenset(
    "t2 t3 t3a m5 m5a m5ad m5d m5dn m5n m5zn m6a m6i m6id m6idn m6in m7a m7i m7i-flex m8a m8i "
    "c5 c5a c5ad c5d c5n c6a c6i c6id c6in c7a c7i c7i-flex c8i r5 r5a r5ad r5b r5d r5dn r5n "
    "r6a r6i r6id r6idn r6in r7a r7i r7iz r8i x2idn x2iedn z1d i3 i3en i4i i7i i7ie d3 d3en".split()
)
_SIZE = re.compile(r"^(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)$")
# Amazon EC2 Instance Types guide, "Amazon EC2 instance type naming conventions": a family is its
# series, generation and options; the option `d` is instance store volumes, and the storage
# optimised series (`d` dense, `i`, `im`, `is`) all have them.
# (What follows a hyphen, `-flex` or a high-memory or Mac size, names no storage.)
_FAMILY = re.compile(r"(?P<series>[a-z]+)[0-9]*(?P<options>[a-z]*)(-.*)?")
_INSTANCE_STORE_SERIES = frozenset({"d", "i", "im", "is"})


def architecture_of(instance_type: str) -> Architecture | None:
    """The architecture of `instance_type`, or None when it is not a known `family.size`."""
    family, dot, size = instance_type.partition(".")
    if not dot or not _SIZE.fullmatch(size):
        return None
    if family in _ARM64_FAMILIES:
        return "arm64"
    if family in _X86_64_FAMILIES:
        return "x86_64"
    return None


def has_instance_store(family: str) -> bool:
    named = _FAMILY.fullmatch(family)
    if named is None:
        raise ValueError(f"not an instance family: {family!r}")
    return named["series"] in _INSTANCE_STORE_SERIES or "d" in named["options"]


def supports_recovery(instance_type: str) -> bool:
    """Whether a CloudWatch alarm may recover an instance of this (known) type: the EC2 User Guide
    ("Recover your instance", requirements) supports the recover action only for instances with
    EBS volumes only ("do not configure instance store volumes"), and counts an attached instance
    store among the causes of failed recoveries. Metal sizes of EBS-only families recover too
    (DescribeInstanceTypes answers `AutoRecoverySupported` for them)."""
    return not has_instance_store(instance_type.partition(".")[0])


def system_check_action(instance_type: str) -> str:
    """What EC2 does to the instance when its system status check fails: recover it onto other
    hardware, or, where it cannot, reboot it."""
    return "recover" if supports_recovery(instance_type) else "reboot"
