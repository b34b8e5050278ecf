"""docker-compose.yml and the Procfile run what exists in this project.

No Docker engine runs here, so the compose file is checked statically: every service's
command names a program, module, management command or WSGI/ASGI target the project has,
with options the program accepts; every long-running service restarts and has a health
check; nginx's upstreams are compose services; and the compose CLI (when installed) accepts
the file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(settings.BASE_DIR)
VENV_BIN = ROOT / ".venv" / "bin"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _app_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("flashsale") or "build" in service
    }


@cache
def _options_of(*program: str) -> frozenset[str]:
    """The long and short options a program's --help lists."""
    out = subprocess.run(
        [*program, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    ).stdout
    return frozenset(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", out))


def _check_target(target: str) -> None:
    module, _, attribute = target.partition(":")
    assert hasattr(importlib.import_module(module), attribute), target


def _check_options(argv: list[str], known: frozenset[str]) -> None:
    for arg in argv:
        if arg.startswith("-"):
            assert arg.split("=")[0] in known, f"{argv[0]}: unknown option {arg}"


def check_command(argv: list[str]) -> None:
    """Fail unless ``argv`` runs something this project has."""
    program = Path(argv[0]).name
    args = argv[1:]
    if program in ("sh", "bash") and args[0] == "-c":
        for part in args[1].split("&&"):
            words = shlex.split(part)
            check_command(words[1:] if words[0] == "exec" else words)
        return
    if program.startswith("python"):
        if args[0] == "-m":
            spec = importlib.util.find_spec(args[1])
            assert spec is not None, f"no module {args[1]}"
            if spec.submodule_search_locations:  # a package runs through its __main__
                assert importlib.util.find_spec(args[1] + ".__main__"), f"{args[1]} has no __main__"
        elif args[0] == "-c":
            compile(args[1], "<healthcheck>", "exec")
        else:
            assert args[0] == "manage.py", argv
            assert args[1] in get_commands(), f"Unknown command: {args[1]!r}"
        return
    assert (VENV_BIN / program).exists() or shutil.which(program), f"no program {program}"
    if program == "granian":
        _check_options(args, _options_of(str(VENV_BIN / "granian")))
        _check_target(args[-1])
    elif program == "daphne":
        _check_options(args, _options_of(str(VENV_BIN / "daphne")))
        _check_target(args[-1])
    elif program == "celery":
        assert args[:2] == ["-A", "flashsale"], argv
        importlib.import_module("flashsale.celery")
        subcommand = args[2]
        assert subcommand in ("worker", "beat", "inspect"), argv
        if subcommand != "inspect":
            known = _options_of(str(VENV_BIN / "celery"), "-A", "flashsale", subcommand)
            _check_options(args[3:], known)


def _expand(text: str) -> str:
    """A Procfile's ${VAR:-default} as the shell would with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def test_every_compose_command_exists_in_the_project():
    for name, service in _app_services(_compose()).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: give the command as a list"
        try:
            check_command(command)
        except AssertionError as exc:
            raise AssertionError(f"service {name}: {exc}") from exc


def test_every_procfile_command_exists_in_the_project():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line]
    assert {line.split(":")[0] for line in lines} >= {"web", "ws", "worker", "beat", "gateway"}
    for line in lines:
        name, _, command = line.partition(":")
        try:
            check_command(shlex.split(_expand(command)))
        except AssertionError as exc:
            raise AssertionError(f"Procfile {name}: {exc}") from exc


def test_compose_runs_the_same_processes_as_the_procfile():
    procfile = {line.split(":")[0] for line in (ROOT / "Procfile").read_text().splitlines()}
    procfile.discard("")
    assert procfile <= set(_compose()["services"]), procfile - set(_compose()["services"])


def test_every_service_restarts_and_has_a_health_check():
    for name, service in _compose()["services"].items():
        if name == "release":  # the one-off release phase: retried on failure, then done
            assert service["restart"] == "on-failure"
            continue
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        if name in _app_services(_compose()) and test[0] == "CMD":
            check_command(test[1:])


def test_app_waits_for_its_dependencies_and_the_migrations():
    compose = _compose()
    for name, service in _app_services(compose).items():
        if name in ("release", "gateway"):
            continue
        assert service["depends_on"]["release"] == {"condition": "service_completed_successfully"}
        for data in ("postgres", "redis", "rabbitmq"):
            assert service["depends_on"][data] == {"condition": "service_healthy"}, name


def test_static_files_are_collected_where_they_are_served():
    """With DEBUG off WhiteNoise serves STATIC_ROOT of the web container itself, so the web
    container collects them as it starts (a one-off container's files would be lost)."""
    compose = _compose()
    web = compose["services"]["web"]
    assert web["environment"]["DEBUG"] == "0"
    script = web["command"][2]
    steps = [step.strip() for step in script.split("&&")]
    assert steps[0].startswith("python manage.py collectstatic --noinput")
    assert steps[-1].startswith("exec granian")
    for name, service in compose["services"].items():
        if name != "web":
            assert "collectstatic" not in str(service.get("command", "")), name


def test_nginx_fronts_web_and_ws_by_their_service_names():
    compose = _compose()
    nginx = compose["services"]["nginx"]
    source, target, _ = nginx["volumes"][0].split(":")
    conf = re.sub(r"#[^\n]*", "", (ROOT / source).read_text())
    assert target.startswith("/etc/nginx/")
    # (upstream lines only; commented-out examples of extra nodes do not count)
    upstream_servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.M)
    assert upstream_servers
    for host, port in upstream_servers:
        assert host in compose["services"], f"nginx upstream {host} is not a compose service"
        command = " ".join(compose["services"][host]["command"])
        assert f"--port {port}" in command or f"-p {port}" in command, (host, port)
    assert set(nginx["depends_on"]) == {"web", "ws"}


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_compose_cli_accepts_the_file():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose CLI (Debian package docker-compose) on this machine")
    env = {**os.environ, "SECRET_KEY": "k" * 64, "JWT_KEYS": "k1:" + "j" * 64}
    done = subprocess.run(
        [*cli, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # Without a key the file refuses to start rather than falling back to a default.
    env.pop("SECRET_KEY")
    done = subprocess.run(
        [*cli, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "SECRET_KEY" in done.stderr
