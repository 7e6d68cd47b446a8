"""The official image of each supported host OS: who publishes it, its exact AMI name, and what its
release serial looks like.

Pure: `config.py` checks a release against its OS before any resource exists, and `host.py` looks
the image up by exact name and owner, never a wildcard with `most_recent` (a newly published image
would replace the host on a routine `pulumi up`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from model.settings import Architecture, HostOs

_DATE = r"20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
# Both distributions name architectures as Debian does.
_IMAGE_ARCHITECTURE: Mapping[Architecture, str] = {"x86_64": "amd64", "arm64": "arm64"}


@dataclass(frozen=True)
class HostImage:
    owner: str
    """The AWS account that publishes the distribution's images: an image of the same name from
    any other account is never picked."""
    name_template: str
    """The exact AMI name, with `{arch}` (amd64, arm64) and `{release}`."""
    release_format: str
    """The release serial as people read it, for the message that refuses a malformed one."""
    release_pattern: re.Pattern[str]
    """Matched whole, the build date first."""

    def accepts(self, release: str) -> bool:
        """Whether `release` is a serial of this OS's images: the whole text matches (`$` alone
        would keep a final newline) and its date is a real day (no 20250230)."""
        if not self.release_pattern.fullmatch(release):
            return False
        try:
            dt.datetime.strptime(release[:8], "%Y%m%d")
        except ValueError:
            return False
        return True

    def ami_name(self, architecture: Architecture, release: str) -> str:
        return self.name_template.format(arch=_IMAGE_ARCHITECTURE[architecture], release=release)


HOST_IMAGES: Mapping[HostOs, HostImage] = {
    "ubuntu-24.04": HostImage(
        owner="099720109477",  # Canonical
        name_template="ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-{release}",
        release_format="YYYYMMDD",
        # The build date, sometimes with a respin suffix (20240423.1).
        release_pattern=re.compile(rf"{_DATE}(\.[0-9]{{1,2}})?"),
    ),
    "debian-12": HostImage(
        # Debian's cloud team (wiki.debian.org/Cloud/AmazonEC2Image/Bookworm). The same account also
        # publishes debian-12-backports-{arch}-... with another kernel, and AWS Marketplace copies
        # append a suffix under another owner: the exact name and owner rule out both.
        owner="136693071363",
        name_template="debian-12-{arch}-{release}",
        release_format="YYYYMMDD-NNNN",
        # The build date and the build number of Debian's image pipeline (20231013-1532).
        release_pattern=re.compile(rf"{_DATE}-[0-9]{{1,6}}"),
    ),
}
