"""The booted-host lab (issue 9): the VM's real user data on a real Debian 12 host.

Works: a rootfs (`rootfs`) and the Qdrant double's image tarball (`qdrant_image`), both built with
mmdebstrap from this machine's apt sources and cached by recipe hash (`cache`); the guest booted
with systemd-nspawn (`nspawn`) behind slirp4netns (`slirp`), seeded with the gzip'd user data and
the lab's stand-ins for EC2 (`provision`: IMDS double, moto as SSM over TLS under SSM's real name,
pebble); first boot to `secure-qdrant: ready` and every `verify` check PASS through the published
ports (`host`, `demo`, `python -m lab --booted`, tests/booted/); the host's life (`lifecycle`):
reboot, replacement onto the same data disk (grown meanwhile), a slow Qdrant start, renewal by
certbot's timer unit.

Where nspawn is not EC2, the lab stands in and says so: no udev (the lab binds the disk under the
/dev/disk/by-uuid name udev would make) and no fstab mount units in a container (the lab runs the
guest's own fstab generator on the stopped root, see `provision.write_fstab_units`).

Next (issue 9's other tests): an outsider network namespace for 6333/16334 and 22 from an admin
CIDR (today's `qdrant-ports-closed` PASS only shows nothing is published for them); fail2ban's ban.
Guests run one at a time: nspawn's cgroup folders have fixed names here.
"""
