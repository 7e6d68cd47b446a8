"""The booted lab's EBS: volumes, snapshots of volumes in use, and volumes made from snapshots.

A volume is a sparse file attached as a loop device. An EBS snapshot is crash-consistent: the
blocks the volume had acknowledged at one instant, taken while the instance runs, without the
writes still in its page cache, as a power cut would leave the disk. A plain copy of a file in use
is not that: the guest writes on while it is read, and the copy is torn. A reflink copy on XFS is:
FICLONE flushes what the loop device wrote, then shares the extents while holding both files' I/O
locks, so the copy holds every write the loop device completed before it and none issued after
(a request still in flight, which the loop device writes a segment at a time, may be in it in
part, as on a disk at a power cut). This machine's disk is ext4, which has no reflink, so the
volumes live on an XFS of the lab's own (itself a sparse file on a loop device). Everything is
detached, unmounted and removed on exit.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.processes import CommandFailed, run

# Sparse: only what the volumes use takes room on this machine's disk.
STORE_BYTES = 64 * 1024**3


@dataclass(frozen=True)
class Volume:
    volume_id: str
    device: str
    """The loop device: the block device the instance gets."""
    image: Path


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    image: Path


def ebs_id(prefix: str) -> str:
    """An id in EBS's current format: the prefix and 17 hex digits."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def nitro_device_link(volume_id: str) -> str:
    """What udev names an EBS volume on a Nitro instance: the NVMe model, then its serial, which
    is the volume id without the dash. Written from udev's rule, apart from the bootstrap's lookup,
    which it checks."""
    return f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}"


class VolumeStore:
    def __init__(self, directory: Path, stack: ExitStack) -> None:
        self._directory = directory
        self._stack = stack

    def create(self, size: int) -> Volume:
        """A new blank volume of `size` bytes."""
        volume_id = ebs_id("vol")
        image = self._directory / f"{volume_id}.img"
        with image.open("wb") as sparse:
            sparse.truncate(size)
        return self._attach(volume_id, image)

    def snapshot(self, volume: Volume) -> Snapshot:
        """A crash-consistent copy of `volume` as it is now, in use or not."""
        snapshot_id = ebs_id("snap")
        image = self._directory / f"{snapshot_id}.img"
        _reflink(volume.image, image)
        return Snapshot(snapshot_id, image)

    def create_from_snapshot(self, snapshot: Snapshot) -> Volume:
        """A new volume holding the snapshot's blocks; the snapshot stays as it was."""
        volume_id = ebs_id("vol")
        image = self._directory / f"{volume_id}.img"
        _reflink(snapshot.image, image)
        return self._attach(volume_id, image)

    def grow(self, volume: Volume, size: int) -> None:
        """What modifying a volume does: the same device, bigger, its filesystem untouched."""
        with volume.image.open("r+b") as image:
            image.truncate(size)
        run(["losetup", "--set-capacity", volume.device])

    def _attach(self, volume_id: str, image: Path) -> Volume:
        device = run(["losetup", "--find", "--show", str(image)]).strip()
        self._stack.callback(run, ["losetup", "--detach", device])
        return Volume(volume_id, device, image)


def _reflink(source: Path, copy: Path) -> None:
    """Never a plain copy in its place: that would be a torn one."""
    run(["cp", "--reflink=always", str(source), str(copy)])


def _unmount(mount: Path) -> None:
    """Lazily if a volume is still held (a guest that did not go): the mount and its loop device
    then go with the last user, and the files are never removed from under a mounted XFS."""
    try:
        run(["umount", "--detach-loop", str(mount)])
    except CommandFailed:
        run(["umount", "--lazy", "--detach-loop", str(mount)])


@contextmanager
def volume_store(workdir: Path) -> Iterator[VolumeStore]:
    """Volumes and snapshots under `workdir` (created), on an XFS of their own."""
    workdir.mkdir(parents=True)
    backing, mount = workdir / "xfs.img", workdir / "volumes"
    with backing.open("wb") as sparse:
        sparse.truncate(STORE_BYTES)
    run(["mkfs.xfs", "-q", "-m", "reflink=1", str(backing)])
    mount.mkdir()
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        run(["mount", "-o", "loop", str(backing), str(mount)])
        stack.callback(_unmount, mount)
        # Entered last, so every volume's loop device is detached before the XFS goes.
        volumes = stack.enter_context(ExitStack())
        yield VolumeStore(mount, volumes)
