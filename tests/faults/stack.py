"""The production stack of docker-compose.yml, run as plain processes on this machine: every CareDesk
process gets exactly the command and the settings its compose service gives it, only with the test's
own PostgreSQL, Redis and ports in place of the compose network's; and a real load balancer (haproxy)
in front of the app replicas, as an operator puts one.

There is no Docker engine here, so this is how the compose file itself is tested: the cluster test
starts what it says, and ``tests/test_compose.py`` checks that what it says is what this module reads."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.faults.cluster import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
#: the CareDesk services of the compose file, in the order a deploy starts them
CAREDESK_SERVICES = ("migrate", "app", "worker")
#: what the operator provides in .env (the compose file refuses to start without them)
OPERATOR_ENV = {"POSTGRES_PASSWORD": "cluster-test", "CAREDESK_SECRET_KEY": "cluster-test-secret-" + "k" * 32,
                "CAREDESK_ADMIN__EMAIL": "owner@shop.example", "CAREDESK_ADMIN__PASSWORD": "cluster-admin-password"}

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        found = env.get(match["name"])
        if match["op"] in (":-", "-"):
            return found if found else match["arg"]
        if match["op"] in (":?", "?") and not found:
            raise KeyError(f"{match['name']}: {match['arg']}")
        return found or ""

    return _REFERENCE.sub(substitute, value)


def compose_services() -> dict[str, dict[str, Any]]:
    """The compose file's services (YAML anchors and merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def service_command(name: str) -> list[str]:
    """The service's command, as compose runs it."""
    command = compose_services()[name]["command"]
    return command.split() if isinstance(command, str) else list(command)


def service_environment(name: str, operator_env: dict[str, str] | None = None) -> dict[str, str]:
    """The service's CAREDESK_ settings, interpolated as compose would with the operator's .env
    (a name without a value is passed through from the host only when set there: left out)."""
    values = {**OPERATOR_ENV, **(operator_env or {})}
    environment = compose_services()[name].get("environment") or {}
    return {key: _interpolate(str(value), values) for key, value in environment.items() if value is not None}


def process_argv(name: str, port: int | None = None) -> list[str]:
    """The service's command for a process on this machine: ``caredesk`` of this venv, and the app's
    published port 8000 on a loopback port of its own."""
    argv = service_command(name)
    assert argv[0] == "caredesk", argv
    argv = argv[1:]
    if port is not None:
        argv = [("127.0.0.1" if arg == "0.0.0.0" else str(port) if arg == "8000" else arg) for arg in argv]
    return argv


def process_environment(name: str, *, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The settings of the service's process: compose's, with this test's database and Redis (the
    compose file names them by service host: ``postgres``, ``redis``) and ``extra`` (the fake
    platforms)."""
    env = service_environment(name)
    assert "@postgres:5432/" in env["CAREDESK_DATABASE_URL"], env["CAREDESK_DATABASE_URL"]
    assert env["CAREDESK_REDIS_URL"].startswith("redis://redis:6379/"), env["CAREDESK_REDIS_URL"]
    env["CAREDESK_DATABASE_URL"] = database_url
    env["CAREDESK_REDIS_URL"] = redis_url
    env.update(extra)
    return env


class LoadBalancer:
    """haproxy on a loopback port in front of the app replicas: round robin, each replica taken out
    while its ``/readyz`` fails, and a request refused by a replica that went away tried on another."""

    def __init__(self, backend_ports: list[int]):
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("haproxy is not installed (make test installs it)")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="caredesk-haproxy-"))
        servers = "\n".join(f"    server app{n} 127.0.0.1:{port} check inter 500ms fall 2 rise 1"
                            for n, port in enumerate(backend_ports, start=1))
        (self.dir / "haproxy.cfg").write_text(f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 3
    option redispatch
    retry-on conn-failure empty-response
frontend caredesk
    bind 127.0.0.1:{self.port}
    default_backend apps
backend apps
    balance roundrobin
    option httpchk GET /readyz
{servers}
""")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start haproxy in the foreground of its own process and wait for its port."""
        check = subprocess.run([self.binary, "-c", "-f", str(self.dir / "haproxy.cfg")], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.dir / "haproxy.cfg")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        stdin=subprocess.DEVNULL)
        wait_for_port(self.port)

    def remove(self) -> None:
        """Stop haproxy and delete its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
