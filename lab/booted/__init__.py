"""The booted-host lab: the real user data on a real Debian 12 host under systemd-nspawn (issue 9)."""
