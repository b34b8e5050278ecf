"""The demo's keys (scripts/demo-env, what `make run` uses): generated on first use, strong
enough for the start-up guard, kept on later runs, and out of git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from flashsale.settings.keys import key_problems

ROOT = Path(__file__).resolve().parents[3]


def _env_in(checkout: Path) -> dict[str, str]:
    done = subprocess.run(
        [checkout / "scripts" / "demo-env", "env"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def test_the_demo_generates_its_own_strong_keys_once_and_keeps_them_out_of_git(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "demo-env", tmp_path / "scripts" / "demo-env")
    first = _env_in(tmp_path)
    assert first["DEMO_MODE"] == "1" and first["DEBUG"] == "0"
    assert key_problems(secret_key=first["SECRET_KEY"], jwt_keys=first["JWT_KEYS"]) == []
    keys = tmp_path / "var" / "demo.env"
    assert keys.stat().st_mode & 0o077 == 0, "readable by others"
    second = _env_in(tmp_path)
    assert (second["SECRET_KEY"], second["JWT_KEYS"]) == (first["SECRET_KEY"], first["JWT_KEYS"])
    # Another checkout gets keys of its own.
    other = tmp_path / "other"
    (other / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo-env", other / "scripts" / "demo-env")
    assert _env_in(other)["SECRET_KEY"] != first["SECRET_KEY"]
    ignored = subprocess.run(["git", "check-ignore", "-q", "var/demo.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "var/demo.env is not git-ignored"
