"""A real nginx running the host's rendered site from a scratch prefix, as root or not.

On the VM the distro's `nginx.conf` includes the site inside its `http {}` block. The lab stands in
for that file with `render_main_config`: the same includes, with the pid file, logs and temp files
moved into the scratch directory so no system path is touched and no root is needed.
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

from lab.processes import Service, require_tools, run, wait_until
from model.nginx_config import site_file
from model.settings import HostSettings

_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render_main_config(host: HostSettings, prefix: Path) -> str:
    """The lab's stand-in for the distro's nginx.conf."""
    paths = host.paths
    temp = "\n".join(f"    {name}_temp_path {prefix}/temp/{name};" for name in _TEMP_PATHS)
    return f"""\
# Foreground, so the lab owns the master process and stops it with its workers.
daemon off;
worker_processes 2;
# Old workers holding a client's idle HTTP/2 connection would otherwise delay a reload's end.
worker_shutdown_timeout 5s;
pid {prefix}/nginx.pid;
error_log {paths.nginx_log_dir}/main.error.log;

events {{
    worker_connections 1024;
}}

http {{
{temp}
    access_log {paths.nginx_log_dir}/main.access.log;
    # Debian's and Ubuntu's nginx.conf include both: the site goes to conf.d; the distro's default
    # site is in sites-enabled until the bootstrap removes it.
    include {paths.nginx_conf_dir}/conf.d/*.conf;
    include {paths.nginx_conf_dir}/sites-enabled/*;
}}
"""


class Nginx:
    """nginx under `prefix`, serving whatever site was last installed."""

    def __init__(self, host: HostSettings, prefix: Path) -> None:
        require_tools("nginx")
        self.host = host
        self.prefix = prefix
        self.main_config = Path(host.paths.nginx_conf_dir) / "nginx.conf"
        self.site = Path(site_file(host.paths))
        for directory in (self.site.parent, Path(host.paths.nginx_log_dir), prefix / "temp"):
            directory.mkdir(parents=True, exist_ok=True)
        self.main_config.write_text(render_main_config(host, prefix))
        self._service: Service | None = None

    def command(self, *arguments: str) -> list[str]:
        return ["nginx", "-p", str(self.prefix), "-c", str(self.main_config), *arguments]

    @property
    def reload_command(self) -> str:
        """A shell command that reloads this nginx: what certbot's deploy hook runs."""
        return shlex.join(self.command("-s", "reload"))

    def check(self) -> None:
        """`nginx -t` on the installed config; raises with nginx's complaint when it fails."""
        run(self.command("-t"))

    def install_distro_default_site(self) -> None:
        """Stands in for Ubuntu's default site, where Ubuntu keeps it: before the bootstrap runs,
        nginx answers any name on port 80 with a page showing its version, as the distro's does."""
        listen = self.host.listen
        default = Path(self.host.paths.nginx_conf_dir) / "sites-enabled" / "default"
        default.parent.mkdir(parents=True, exist_ok=True)
        default.write_text(
            "server {\n"
            f"    listen {listen.ipv4}:{self.host.ports.http} default_server;\n"
            f"    listen {listen.ipv6}:{self.host.ports.http} default_server;\n"
            "    return 404;\n"
            "}\n"
        )

    def install_site(self, text: str) -> None:
        """Write the site and make it live; a config nginx rejects is never loaded."""
        self.site.write_text(text)
        self.check()
        if self._service is not None:
            self.reload()

    def start(self) -> None:
        self.check()
        self._service = Service("nginx", self.command(), self.prefix / "nginx.stdout.log")
        self._service.wait_for_port(self.host.ports.http)

    def reload(self) -> None:
        """Reload and wait until only new workers, which run the new config, are left: until the
        old ones exit they still accept connections and answer with the old config."""
        service = self._require_running()
        before = self.workers()
        service.send_signal(signal.SIGHUP)
        wait_until(lambda: bool(self.workers() - before), "nginx to start new workers")
        wait_until(lambda: not self.workers() & before, "nginx's old workers to exit")

    def workers(self) -> set[int]:
        service = self._require_running()
        children = Path(f"/proc/{service.pid}/task/{service.pid}/children").read_text()
        return {int(pid) for pid in children.split()}

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None

    def _require_running(self) -> Service:
        if self._service is None:
            raise RuntimeError("nginx is not running")
        return self._service
