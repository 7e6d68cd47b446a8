"""The booted guest's root filesystem: Debian 12 as a cloud image has it, before any user data.

What the image brings and the bootstrap must not assume is installed (docker.io, nginx, certbot,
ufw, fail2ban) is left out: the bootstrap installs it with apt, as on the VM. Besides the image's
own packages there is one lab file, the cgroup shim unit (see `CGROUP_SHIM`).
"""

from __future__ import annotations

from pathlib import Path

from lab.booted.cache import cached
from lab.booted.debian import apt_sources, mmdebstrap, sources_recipe
from lab.processes import run

# A cloud image of Debian 12 before its user data: systemd as init, cloud-init, sshd, and what the
# bootstrap's own shell needs (awk, the ext4 tools).
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "cloud-init", "python3", "iproute2", "ca-certificates",
    "netbase", "procps", "curl", "gzip", "locales", "sudo", "openssh-server", "e2fsprogs", "mawk",
)  # fmt: skip
# cloud-init's locale module sets this one and fails (exit 255) if it was never generated.
LOCALE = "en_US.UTF-8 UTF-8"
CGROUP_SHIM_UNIT = "secure-qdrant-lab-cgroup-rw.service"
# nspawn mounts the cgroup v1 controllers read-only; docker's runc must create cgroups in them. Only
# a plain `remount,rw` of a busy mount fails, a bind remount does not. Runs only under nspawn.
CGROUP_SHIM = """\
[Unit]
Description=Writable cgroup controllers for dockerd (secure-qdrant booted lab)
ConditionVirtualization=systemd-nspawn
DefaultDependencies=no
Before=sysinit.target containerd.service docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -ec 'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done'

[Install]
WantedBy=sysinit.target
"""
# The lab's guest has one datasource (the NoCloud seed the lab writes) and its network is set up by
# slirp4netns from outside, so cloud-init neither probes for others nor rewrites the interface.
CLOUD_CFG = """\
datasource_list: [NoCloud]
network: {config: disabled}
"""
CLOUD_CFG_PATH = "etc/cloud/cloud.cfg.d/90-secure-qdrant-lab.cfg"


def _finish(root: Path) -> None:
    """First-boot state: no machine identity, no host name (cloud-init sets it), the locale built."""
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/locale.gen").write_text(f"{LOCALE}\n")
    run(["chroot", str(root), "locale-gen"])
    (root / CLOUD_CFG_PATH).write_text(CLOUD_CFG)
    unit_dir = root / "etc/systemd/system"
    (unit_dir / CGROUP_SHIM_UNIT).write_text(CGROUP_SHIM)
    wants = unit_dir / "sysinit.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / CGROUP_SHIM_UNIT).symlink_to(f"/etc/systemd/system/{CGROUP_SHIM_UNIT}")


def guest_rootfs() -> Path:
    """The cached rootfs (built now if this recipe never was). Copy it before booting it."""
    sources = apt_sources()
    recipe = {
        "packages": PACKAGES,
        "sources": sources_recipe(sources),
        "files": [LOCALE, CGROUP_SHIM, CLOUD_CFG],
    }

    def build(target: Path) -> None:
        mmdebstrap(target, "apt", PACKAGES, sources)
        _finish(target)

    return cached("rootfs", recipe, build)
