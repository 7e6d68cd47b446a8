"""The hardening guide's Nginx site, reproduced to compare against ours (benchmarks only).

Verbatim apart from what must change to run it here: the ports and the domain, the certificate
paths, the two files certbot's nginx plugin would have put in /etc/letsencrypt, and, in the lab, a
listen address. Limits are read from the same `Limits` as ours (the guide's values are the
defaults), so a comparison measures the configs and not different budgets. Never deployed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.processes import CommandFailed, LabUnavailable, require_tools, run
from model.settings import HostSettings

GUIDE_TLS_OPTIONS = "/etc/letsencrypt/options-ssl-nginx.conf"
GUIDE_DHPARAM = "/etc/letsencrypt/ssl-dhparams.pem"


def render_guide_site(
    host: HostSettings,
    certificate: str,
    certificate_key: str,
    *,
    tls_options: str = GUIDE_TLS_OPTIONS,
    dhparam: str = GUIDE_DHPARAM,
    listen_address: str | None = None,
) -> str:
    ports, limits = host.ports, host.limits

    def listen(port: int) -> str:
        return f"{listen_address}:{port}" if listen_address else str(port)

    return f"""\
limit_req_zone $binary_remote_addr zone=qdrant_rl:10m rate={limits.rate_limit_rps}r/s;

server {{
    listen {listen(ports.http)};
    server_name {host.domain};
    return 301 https://$host$request_uri;
}}

# REST over HTTPS
server {{
    listen {listen(ports.https)} ssl http2;
    server_name {host.domain};

    ssl_certificate     {certificate};
    ssl_certificate_key {certificate_key};
    include {tls_options};
    ssl_dhparam {dhparam};

    server_tokens off;
    add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
    add_header X-Content-Type-Options "nosniff" always;
    add_header X-Frame-Options "DENY" always;
    add_header Referrer-Policy "no-referrer" always;

    client_max_body_size {limits.max_body_size_mb}m;
    proxy_read_timeout 120s;

    location / {{
        limit_req zone=qdrant_rl burst={limits.rest_burst} nodelay;
        limit_req_status 429;

        proxy_pass http://127.0.0.1:{ports.qdrant_rest};
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_http_version 1.1;
    }}
}}

# gRPC over HTTPS, separate block because grpc_pass needs end-to-end HTTP/2
server {{
    listen {listen(ports.grpc_tls)} ssl http2;
    server_name {host.domain};

    ssl_certificate     {certificate};
    ssl_certificate_key {certificate_key};
    include {tls_options};
    ssl_dhparam {dhparam};

    server_tokens off;
    grpc_read_timeout 120s;
    grpc_send_timeout 120s;
    client_max_body_size {limits.max_body_size_mb}m;

    location / {{
        limit_req zone=qdrant_rl burst={limits.grpc_burst} nodelay;
        limit_req_status 429;

        # Internal Qdrant gRPC on the loopback. Note grpc:// (cleartext to backend).
        grpc_pass grpc://127.0.0.1:{ports.qdrant_grpc};
        grpc_set_header X-Real-IP $remote_addr;
    }}
}}
"""


def certbot_tls_files() -> tuple[Path, Path]:
    """(options-ssl-nginx.conf, ssl-dhparams.pem) as shipped by certbot and its nginx plugin."""
    require_tools("certbot")
    # certbot's own interpreter: the one that can import it, whatever Python runs the lab.
    certbot = Path(shutil.which("certbot") or "certbot")
    interpreter = certbot.read_text().splitlines()[0].removeprefix("#!").strip()
    try:
        output = run(
            [
                interpreter,
                "-c",
                "import os, certbot, certbot_nginx;"
                "print(os.path.dirname(certbot.__file__));"
                "print(os.path.dirname(certbot_nginx.__file__))",
            ]
        )
    except CommandFailed as error:
        raise LabUnavailable("certbot's nginx plugin (python3-certbot-nginx) is missing") from error
    certbot_dir, plugin_dir = (Path(line) for line in output.split())
    return (
        plugin_dir / "_internal" / "tls_configs" / "options-ssl-nginx.conf",
        certbot_dir / "ssl-dhparams.pem",
    )
