"""The demo's process manager (scripts/supervise.py, what `make run` uses): a process that
dies is started again while the others keep running, and Ctrl-C stops them all and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from apps.core.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]

# Each process writes its pid to a file, then waits; SIGTERM ends it.
CHILD = (
    f'{sys.executable} -c "import os, sys, time; '
    "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(3600)\""
)


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text()) or None
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_crashed_process_is_restarted_and_ctrl_c_stops_all_and_exits_0(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"releaser: {CHILD} {tmp_path}/releaser.pid\nworker: {CHILD} {tmp_path}/worker.pid\n"
    )
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "scripts/supervise.py",
            "--procfile",
            procfile,
            "--log-dir",
            tmp_path / "log",
            "--grace",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        releaser = wait_for(lambda: _pid(tmp_path / "releaser.pid"), timeout=30)
        worker = wait_for(lambda: _pid(tmp_path / "worker.pid"), timeout=30)
        (tmp_path / "releaser.pid").write_text("")

        os.kill(releaser, signal.SIGKILL)
        restarted = wait_for(lambda: _pid(tmp_path / "releaser.pid"), timeout=30)
        assert restarted != releaser and _alive(restarted)
        assert _alive(worker), "the other process kept running"
        assert supervisor.poll() is None, "the supervisor kept running"

        supervisor.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
            for name in ("releaser", "worker"):  # its children have sessions of their own
                pid = _pid(tmp_path / f"{name}.pid")
                if pid and _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert supervisor.returncode == 0, output
    assert "releaser was killed by SIGKILL; restarting" in output
    wait_for(lambda: not _alive(restarted) and not _alive(worker), timeout=10)


def test_no_process_outlives_a_killed_supervisor(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(f"web: {CHILD} {tmp_path}/web.pid\n")
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "scripts/supervise.py",
            "--procfile",
            procfile,
            "--log-dir",
            tmp_path / "log",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    web = wait_for(lambda: _pid(tmp_path / "web.pid"), timeout=30)
    try:
        supervisor.kill()  # no chance to clean up (as when its terminal is closed)
        supervisor.wait()
        wait_for(lambda: not _alive(web), timeout=10)
    finally:
        if _alive(web):
            os.kill(web, signal.SIGKILL)
