"""The booted-host lab (issue 9): the VM's real user data on a real Debian 12 host.

Works: a rootfs (`rootfs`) and the Qdrant double's image tarball (`qdrant_image`), both built with
mmdebstrap from this machine's apt sources and cached by recipe hash (`cache`); the guest booted
with systemd-nspawn (`nspawn`) behind slirp4netns (`slirp`), seeded with the gzip'd user data and
the lab's stand-ins for EC2 (`provision`: IMDS double, moto as SSM over TLS under SSM's real name,
pebble); first boot to `secure-qdrant: ready` and every `verify` check PASS through the published
ports (`host`, `demo`, `python -m lab --booted`, tests/booted/).

Next (issue 9's other tests): an outsider network namespace for 6333/16334 and 22 from an admin
CIDR (today's `qdrant-ports-closed` PASS only shows nothing is published for them); fail2ban's ban;
reboot (systemd's fstab mount unit wants /dev/disk/by-uuid, which no udev makes in the guest: the
lab must provide the link); replacement on the same disk; a slow Qdrant start; the renewal timer;
growing the disk. Guests run one at a time: nspawn's cgroup folders have fixed names here.
"""
