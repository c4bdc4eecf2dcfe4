"""Checks on the production stack (docker-compose.yml, Dockerfile, .dockerignore)
and on the `make test` wiring of scripts/test-services.sh.

There is no Docker engine on the dev/CI machines, so the compose file is loaded
and checked here rather than run. If the `docker compose` CLI plugin is present,
`docker compose config` (which needs no engine) validates it as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"
SERVICES_SCRIPT = ROOT / "scripts" / "test-services.sh"

# Settings names CareDesk reads; renaming one in compose silently drops it.
CAREDESK_ENV_NAMES = {
    "CAREDESK_DATABASE_URL",
    "CAREDESK_REDIS_URL",
    "CAREDESK_ADMIN__EMAIL",
    "CAREDESK_ADMIN__PASSWORD",
}
# Variables the operator must provide; compose must refuse to start without them.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "CAREDESK_SECRET_KEY",
    "CAREDESK_ADMIN__EMAIL",
    "CAREDESK_ADMIN__PASSWORD",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$|API_KEY")
# A value that is exactly one required reference: ${NAME:?message}
REQUIRED_REF = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}$")
URL_PASSWORD = re.compile(r"^[A-Za-z][\w+.-]*://[^:/@]+:(?P<password>.*)@[^@]*$")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
class MissingVariable(Exception):
    pass


_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """The subset of compose interpolation the file uses: ${X}, ${X:-d}, ${X-d}, ${X:?m}, ${X?m}."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        val = env.get(name)
        if op == ":-":
            return val if val else arg
        if op == "-":
            return val if val is not None else arg
        if (op == ":?" and not val) or (op == "?" and val is None):
            raise MissingVariable(f"{name}: {arg}")
        return val or ""

    return _REF.sub(sub, value)


def env_of(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {k: v for k, v in pairs}
    return dict(env)


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form means "started", not "healthy"
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source for the service's volumes (short or long syntax)."""
    mounts = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, str):
            source, _, rest = vol.partition(":")
            mounts[rest.split(":")[0]] = source
        else:
            mounts[vol["target"]] = vol.get("source")
    return mounts


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


# --------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------
def test_compose_defines_migrate_app_worker_postgres_and_redis(services):
    assert {"migrate", "app", "worker", "postgres", "redis"} <= set(services)


def test_migrate_runs_once_before_app_and_worker(services):
    def argv(cmd):
        return cmd.split() if isinstance(cmd, str) else list(cmd)

    migrate = services["migrate"]
    assert argv(migrate["command"]) == ["caredesk", "migrate"]
    assert str(migrate.get("restart", "no")) == "no", "a one-shot service must not be restarted"
    worker_only = {"CAREDESK_WORKER__HTTP_PORT"}
    assert env_of(migrate) == {key: value for key, value in env_of(services["worker"]).items()
                               if key not in worker_only}, "migrate must see the settings app and worker see"
    assert depends_on(migrate).get("postgres", {}).get("condition") == "service_healthy"
    for name in ("app", "worker"):
        assert depends_on(services[name]).get("migrate", {}).get("condition") == \
            "service_completed_successfully", name


def test_no_service_pins_its_replica_count(services):
    for name in ("app", "worker"):
        deploy = services[name].get("deploy") or {}
        assert "replicas" not in deploy, f"{name} must scale with --scale"
        assert "container_name" not in services[name], f"{name} cannot scale with a fixed container name"


def test_app_and_worker_run_the_same_image_built_from_the_repo_dockerfile(services):
    app, worker = services["app"], services["worker"]
    assert app.get("build"), "app must be built from the repo"
    assert worker.get("build") == app["build"]
    assert worker.get("image") == app.get("image")
    build = app["build"] if isinstance(app["build"], dict) else {"context": app["build"]}
    context = (ROOT / build.get("context", ".")).resolve()
    assert context == ROOT
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_app_serves_and_worker_runs_background_jobs(services):
    def argv(cmd):
        return cmd.split() if isinstance(cmd, str) else list(cmd)

    assert argv(services["app"]["command"])[:2] == ["caredesk", "serve"]
    assert "0.0.0.0" in argv(services["app"]["command"])
    assert argv(services["worker"]["command"]) == ["caredesk", "worker"]


def test_app_waits_for_healthy_postgres_and_redis(services):
    deps = depends_on(services["app"])
    for name in ("postgres", "redis"):
        assert deps.get(name, {}).get("condition") == "service_healthy", name


def test_worker_waits_for_healthy_postgres_and_redis(services):
    deps = depends_on(services["worker"])
    for name in ("postgres", "redis"):
        assert deps.get(name, {}).get("condition") == "service_healthy", name


def test_every_long_running_service_except_rasa_has_a_healthcheck(services):
    missing = []
    for name, service in services.items():
        if name in {"migrate", "rasa"}:
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        if check.get("disable") or not test or test in (["NONE"], "NONE"):
            missing.append(name)
    assert not missing, f"services without a healthcheck: {missing}"


def test_app_and_worker_healthchecks_probe_readyz(services):
    for name in ("app", "worker"):
        test = services[name]["healthcheck"]["test"]
        assert "/readyz" in (test if isinstance(test, str) else " ".join(test)), name
    port = env_of(services["worker"])["CAREDESK_WORKER__HTTP_PORT"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(services["worker"]["healthcheck"]["test"])


def test_rasa_only_starts_under_the_rasa_profile(services):
    assert services["rasa"].get("profiles") == ["rasa"]
    assert services["rasa"]["image"].startswith("rasa/rasa:")
    # The default stack must not need rasa: no other profiles, no dependency on it.
    for name, service in services.items():
        if name != "rasa":
            assert not service.get("profiles"), f"{name} would not start by default"
            assert "rasa" not in depends_on(service), f"{name} depends on the optional rasa"


def test_app_and_worker_use_the_fixed_caredesk_env_names(services):
    for name in ("app", "worker"):
        env = env_of(services[name])
        assert CAREDESK_ENV_NAMES <= set(env), f"{name} lacks {CAREDESK_ENV_NAMES - set(env)}"
        assert env.get("CAREDESK_ENVIRONMENT") == "production"


def test_app_reaches_postgres_and_redis_by_service_name(services):
    env = env_of(services["app"])
    assert env["CAREDESK_DATABASE_URL"].startswith("postgresql+psycopg://caredesk:")
    assert env["CAREDESK_DATABASE_URL"].endswith("@postgres:5432/caredesk")
    assert env["CAREDESK_REDIS_URL"].startswith("redis://redis:6379/")


def test_no_secret_value_is_hard_coded(services):
    offenders = []
    for svc_name, service in services.items():
        for key, value in env_of(service).items():
            if value is None:  # passed through from the host
                continue
            value = str(value)
            if SECRET_NAME.search(key) and not REQUIRED_REF.match(value):
                offenders.append(f"{svc_name}.{key}")
            url = URL_PASSWORD.match(value)
            if url and not REQUIRED_REF.match(url["password"]):
                offenders.append(f"{svc_name}.{key} (password in URL)")
    assert not offenders, f"hard-coded secrets: {offenders}"


def test_compose_refuses_to_interpolate_without_each_required_secret():
    text = COMPOSE_FILE.read_text()
    full = {name: f"value-of-{name.lower()}" for name in REQUIRED_SECRETS}
    interpolate(text, full)  # everything provided: fine
    for name in sorted(REQUIRED_SECRETS):
        env = {k: v for k, v in full.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            interpolate(text, env)


def test_app_port_is_published_on_loopback_only_by_default(services):
    ports = services["app"].get("ports") or []
    assert ports, "app must publish port 8000"
    for port in ports:
        if isinstance(port, str):
            parts = interpolate(port, {}).split(":")
            assert len(parts) == 3, f"{port!r} would listen on all interfaces"
            host_ip, target = parts[0], parts[2]
        else:
            host_ip = interpolate(str(port.get("host_ip", "")), {})
            target = str(port["target"])
        assert host_ip == "127.0.0.1"
        assert target == "8000"


def test_only_the_app_publishes_ports(services):
    published = sorted(name for name, s in services.items() if s.get("ports") and name != "app")
    assert not published, f"{published} must stay on the compose network"


def test_state_lives_in_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    expected = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "app": "/app/var",
        "worker": "/app/var",
    }
    for name, target in expected.items():
        source = volume_mounts(services[name]).get(target)
        assert source in declared, f"{name}:{target} is not on a named volume ({source!r})"
    assert volume_mounts(services["app"])["/app/var"] == volume_mounts(services["worker"])["/app/var"]


# --------------------------------------------------------------------------
# Dockerfile and .dockerignore
# --------------------------------------------------------------------------
def test_dockerfile_cmd_runs_caredesk_serve():
    cmds = [args for kw, args in dockerfile_instructions() if kw == "CMD"]
    assert cmds, "Dockerfile has no CMD"
    argv = json.loads(cmds[-1])  # exec form, so signals reach caredesk
    assert argv[:2] == ["caredesk", "serve"]
    assert "0.0.0.0" in argv and "8000" in argv


def test_dockerfile_builds_on_python_311_slim_with_constraints_as_non_root():
    instructions = dockerfile_instructions()
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert froms and froms[0].split()[0] == "python:3.11-slim"
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert re.search(r"pip install [^&;]*-c constraints\.txt \.(\s|$)", runs)
    users = [args for kw, args in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert ("WORKDIR", "/app") in instructions
    assert any(kw == "EXPOSE" and "8000" in args.split() for kw, args in instructions)


def test_dockerignore_keeps_local_state_out_but_ships_data():
    patterns = {
        line.strip().rstrip("/").removeprefix("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git"} <= patterns
    # Needed in the image: the build reads these, the app reads data/.
    for needed in ("data", "pyproject.toml", "constraints.txt", "README.md", "helpdesk", "nlu"):
        assert needed not in patterns, f".dockerignore drops {needed}"


# --------------------------------------------------------------------------
# make test -> scripts/test-services.sh
# --------------------------------------------------------------------------
def test_makefile_test_target_runs_test_services_script():
    """`make test` reaches scripts/test-services.sh through its prerequisites."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for line in MAKEFILE.read_text().splitlines():
        m = re.match(r"^([^\s:#=][^:=]*):(?!=)\s*(.*)$", line)
        if m and not line.startswith("\t"):
            prereqs = m[2].replace("|", " ").split()
            for target in m[1].split():
                rules[target] = (prereqs, [])
            current = m[1].split()
        elif line.startswith("\t") and current:
            for target in current:
                rules[target][1].append(line.strip())

    def runs_script(target: str, seen: set[str]) -> bool:
        if target in seen or target not in rules:
            return False
        seen.add(target)
        prereqs, recipe = rules[target]
        if any("scripts/test-services.sh" in cmd for cmd in recipe):
            return True
        return any(runs_script(p, seen) for p in prereqs)

    assert runs_script("test", set())


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_starts_services_before_pytest_and_loads_their_urls():
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    out = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()
    script = [i for i, line in enumerate(out) if "scripts/test-services.sh" in line]
    pytest_lines = [i for i, line in enumerate(out) if "pytest" in line]
    assert script and pytest_lines, out
    assert script[0] < pytest_lines[0]
    assert "var/test-services.env" in out[pytest_lines[0]]


def test_test_services_script_is_strict_bash():
    text = SERVICES_SCRIPT.read_text()
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SERVICES_SCRIPT)], check=True, timeout=30)


def test_test_services_env_file_exports_both_urls():
    env_file = ROOT / "var" / "test-services.env"
    if not env_file.exists():
        pytest.skip("scripts/test-services.sh has not run here")
    exports = dict(
        re.findall(r"^export (CAREDESK_TEST_\w+)=(\S+)$", env_file.read_text(), re.M)
    )
    assert exports == {
        "CAREDESK_TEST_REDIS_URL": "redis://127.0.0.1:6379/15",
        "CAREDESK_TEST_POSTGRES_URL":
            "postgresql+psycopg://caredesk:caredesk@127.0.0.1:5432/caredesk_test",
    }


# --------------------------------------------------------------------------
# docker compose CLI (optional: only where the plugin is installed)
# --------------------------------------------------------------------------
def _docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    probe = subprocess.run(
        [docker, "compose", "version"], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30,
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or [""])[0][:200]
        pytest.skip(f"docker compose plugin not available: {reason}")
    return [docker, "compose"]


def _compose_config(tmp_path: Path, env_overrides: dict[str, str], *args: str):
    # An empty --env-file so a developer's .env cannot fill in what is missing.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    env.update(env_overrides)
    result = subprocess.run(
        [*_docker_compose(), "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE),
         *args, "config", "-q"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0 and re.search(r"daemon|engine", result.stderr, re.I):
        pytest.skip(f"docker compose config needs an engine here: {result.stderr.strip()[:200]}")
    return result


def test_docker_compose_config_accepts_the_file_with_secrets_set(tmp_path):
    secrets = {name: "test-" + name.lower() for name in REQUIRED_SECRETS}
    for profile_args in ((), ("--profile", "rasa")):
        result = _compose_config(tmp_path, secrets, *profile_args)
        assert result.returncode == 0, result.stderr


def test_docker_compose_config_rejects_the_file_without_secrets(tmp_path):
    result = _compose_config(tmp_path, {})
    assert result.returncode != 0
    assert any(name in result.stderr for name in REQUIRED_SECRETS), result.stderr


# --------------------------------------------------------------------------
# the cluster test (tests/faults/test_cluster.py) runs what compose says
# --------------------------------------------------------------------------
def test_the_cluster_test_runs_every_caredesk_service_of_the_compose_file(services):
    from tests.faults.stack import CAREDESK_SERVICES

    built_here = {name for name, service in services.items() if service.get("build")}
    assert set(CAREDESK_SERVICES) == built_here


def test_the_cluster_test_runs_each_service_with_its_compose_command_and_settings(services):
    from tests.faults.stack import CAREDESK_SERVICES, OPERATOR_ENV, process_argv, process_environment

    for name in CAREDESK_SERVICES:
        command = services[name]["command"]
        argv = process_argv(name, port=18000)
        # only the published address changes: the compose network's 0.0.0.0:8000 becomes a loopback port
        expected = [("127.0.0.1" if arg == "0.0.0.0" else "18000" if arg == "8000" else arg) for arg in command[1:]]
        assert argv == expected, name
        env = process_environment(name, database_url="postgresql+psycopg://test@127.0.0.1/db",
                                  redis_url="redis://127.0.0.1:6390/0")
        compose_env = {key: value for key, value in env_of(services[name]).items() if value is not None}
        assert set(env) == set(compose_env), name
        for key, value in compose_env.items():
            if key not in {"CAREDESK_DATABASE_URL", "CAREDESK_REDIS_URL", "CAREDESK_WORKER__HTTP_PORT"}:
                assert env[key] == interpolate(str(value), OPERATOR_ENV), (name, key)
