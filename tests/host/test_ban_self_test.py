"""The bootstrap's fail2ban step proves that a ban reaches netfilter (issue 24, item 2), run here as
the shipped script with fail2ban's and netfilter's commands replaced by doubles that keep their
contract: `fail2ban-client set JAIL banip` succeeds even when the jail's ban action fails (fail2ban
only logs that), and the rule exists in the jail's chain only when the action ran.

The booted lab shows the same on a real host with the ban action's tool hidden
(tests/booted/test_first_boot.py,
`test_the_ban_self_test_fails_when_the_ban_actions_tool_is_missing`); this holds the step's logic
in the suite that runs on every change.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from model.user_data import CLOUD_INIT_DIR, render_settings_env

JAILS = ("sshd", "secure-qdrant-auth", "secure-qdrant-rate-limit")
# The doubles. fail2ban-client: `-d` lists the jails as fail2ban's dump adds them; a ban is noted
# as a rule only while the ban action works (ACTION_WORKS set), an unban always lifts it.
# iptables: `-S CHAIN` prints the chain's rules as iptables-multiport's action writes them.
# sleep: the step's waits, made instant.
DOUBLES = {
    "fail2ban-client": """#!/bin/sh
printf '%s\\n' "$*" >>"$CALLS"
case "$1" in
  -d) for jail in $JAILS; do printf "['add', '%s', 'auto']\\n" "$jail"; done ;;
  set)
    case "$3" in
      banip) [ -z "$ACTION_WORKS" ] || printf '%s %s\\n' "$2" "$4" >>"$RULES" ;;
      unbanip) grep -vxF "$2 $4" "$RULES" >"$RULES.new"; mv "$RULES.new" "$RULES" ;;
    esac ;;
esac
""",
    "iptables": """#!/bin/sh
chain=$3
while read -r jail address; do
  [ "f2b-$jail" != "$chain" ] || echo "-A $chain -s $address/32 -j REJECT"
done <"$RULES"
""",
    "systemctl": "#!/bin/sh\n",
    "logger": "#!/bin/sh\n",
    "sleep": "#!/bin/sh\n",
}


def run_fail2ban_step(
    tmp_path: Path, action_works: bool
) -> tuple[subprocess.CompletedProcess[str], list[str], str]:
    """The bootstrap's fail2ban step alone; its result, the fail2ban-client calls, and the rules
    left in the jails' chains."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    doubles = tmp_path / "bin"
    doubles.mkdir()
    for name, script in DOUBLES.items():
        (doubles / name).write_text(script)
        (doubles / name).chmod(0o755)
    settings = tmp_path / "settings.env"
    settings.write_text(
        render_settings_env(
            {
                "NGINX_ACCESS_LOG": str(tmp_path / "log" / "access.log"),
                "NGINX_ERROR_LOG": str(tmp_path / "log" / "error.log"),
            }
        )
    )
    calls, rules = tmp_path / "calls", tmp_path / "rules"
    rules.write_text("")
    done = subprocess.run(
        ["bash", str(CLOUD_INIT_DIR / "bootstrap.sh"), str(settings)],
        env={
            "PATH": f"{doubles}:/usr/bin:/bin",
            "BOOTSTRAP_STEPS": "fail2ban",
            "JAILS": " ".join(JAILS),
            "CALLS": str(calls),
            "RULES": str(rules),
            "ACTION_WORKS": "1" if action_works else "",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines(), rules.read_text()


def test_the_fail2ban_step_passes_when_every_jails_ban_reaches_netfilter(tmp_path: Path) -> None:
    """Each jail, the distro's sshd too, bans the documentation address and the kernel holds the
    rule; the ban is lifted, so no address stays shut out and the next run can prove it again."""
    done, calls, rules = run_fail2ban_step(tmp_path, action_works=True)

    assert done.returncode == 0, done.stderr
    assert f"bans reach netfilter: {' '.join(JAILS)}" in done.stderr
    assert [c for c in calls if " banip " in c] == [f"set {j} banip 192.0.2.1" for j in JAILS]
    assert rules == ""


def test_the_fail2ban_step_fails_when_a_ban_never_reaches_netfilter(tmp_path: Path) -> None:
    """Ubuntu 24.04's nftables default without `nft`: fail2ban accepts every ban and runs on while
    its action fails. `fail2ban-client --test` passes; the step must not, and must name the jail.
    Every try's ban is lifted even so: fail2ban never re-runs the action for an address it counts
    as banned, so a ban left behind would fail every later check."""
    done, calls, rules = run_fail2ban_step(tmp_path, action_works=False)

    assert done.returncode == 1
    assert "waiting for a ban in sshd to reach netfilter" in done.stderr
    assert "bans reach netfilter" not in done.stderr
    bans = [c for c in calls if " banip " in c]
    assert bans and len(bans) == len([c for c in calls if " unbanip " in c])
    assert rules == ""
