#!/usr/bin/env python3
"""Run the Procfile's processes for the demo, restart any that dies, stop them all on Ctrl-C.

Unlike honcho, one crashed process does not end the others: it is started again (after 1 s,
doubling to 30 s while it keeps failing at once). Each process writes to its own log file
(``--log-dir``, default var/log/); the console shows only warnings and errors from those logs,
the restarts, and the output of ``--when-ready`` (a command run once the web process answers,
e.g. the demo's banner). Ctrl-C (or SIGTERM) stops every process group with SIGTERM, then
SIGKILL after ``--grace`` seconds, and exits 0.

    scripts/supervise.py [--procfile Procfile] [--only web,worker] [--verbose]
                         [--ready-url http://127.0.0.1:8000/healthz] [--when-ready CMD]
                         [--metrics-dir var/metrics]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

NOISY = re.compile(r"\b(WARNING|WARN|ERROR|CRITICAL|FATAL)\b|Traceback|Error:")
# Warnings that are expected in the demo and say nothing to act on.
HARMLESS = re.compile(r"seems quite high compared to the number of CPU cores")
FIRST_DELAY, LONGEST_DELAY, STABLE_SECONDS = 1.0, 30.0, 30.0


def say(message: str) -> None:
    print(message, flush=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, however it dies (SIGKILL,
    a closed terminal), so no process outlives the demo (Linux only; elsewhere a no-op)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def forget_live_gauges(pid: int) -> None:
    """A dead process's live gauges (open WebSockets) must not be added up any more; its
    counters stay (prometheus_client's mark_process_dead, without importing it here)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for path in Path(folder).glob(f"gauge_live*_{pid}.db"):
            path.unlink(missing_ok=True)


def read_procfile(path: Path) -> dict[str, str]:
    processes = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


@dataclass
class Child:
    name: str
    command: str
    log_path: Path
    verbose: bool
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = FIRST_DELAY
    restart_at: float | None = None
    restarts: int = 0
    _log_offset: int = 0
    _partial: str = field(default="")

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child holds it; closed below)
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {self.command}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, not it
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.started_at = time.monotonic()
        self.restart_at = None

    def echo_new_lines(self) -> None:
        """Copy new warning/error lines (every line with --verbose) to the console."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                chunk = log.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._log_offset += len(chunk)
        text = self._partial + chunk.decode(errors="replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            if self.verbose or (NOISY.search(line) and not HARMLESS.search(line)):
                say(f"{self.name:>9} | {line}")

    def signal_group(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass


def take_terminal() -> tuple[int, int] | None:
    """Become the terminal's foreground process group, so Ctrl-C reaches this process alone
    and not `make` above it (which would print "make: *** [run] Interrupt"/"Error 130").
    Returns what to restore; None when not on a terminal."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return None
        previous = os.tcgetpgrp(fd)
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # allowed to take the terminal
        os.tcsetpgrp(fd, os.getpgrp())
        return fd, previous
    except OSError:
        return None


def give_terminal_back(terminal: tuple[int, int] | None) -> None:
    if terminal is not None:
        try:
            os.tcsetpgrp(*terminal)
        except OSError:
            pass


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(self, children: list[Child], *, ready_url: str, when_ready: str, grace: float):
        self.children = children
        self.ready_url = ready_url
        self.when_ready = when_ready
        self.grace = grace
        self.stopping = False

    def on_signal(self, signum, frame) -> None:
        if self.stopping:  # a second Ctrl-C: no more waiting
            for child in self.children:
                child.signal_group(signal.SIGKILL)
        self.stopping = True

    def run(self) -> int:
        # Ctrl-C, a stop request, or the terminal closing: stop everything.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        terminal = take_terminal()
        try:
            return self._run()
        finally:
            give_terminal_back(terminal)

    def _run(self) -> int:
        for child in self.children:
            child.start()
        ready_done = not (self.when_ready and self.ready_url)
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                child.echo_new_lines()
                code = child.process.poll()
                if code is not None and child.restart_at is None:
                    forget_live_gauges(child.process.pid)
                    if now - child.started_at > STABLE_SECONDS:
                        child.delay = FIRST_DELAY
                    child.restart_at = now + child.delay
                    say(
                        f"  ! {child.name} {describe_exit(code)}; restarting in "
                        f"{child.delay:.0f} s (log: {child.log_path})"
                    )
                    child.delay = min(child.delay * 2, LONGEST_DELAY)
                elif child.restart_at is not None and now >= child.restart_at:
                    child.restarts += 1
                    child.start()
                    say(f"  ↻ {child.name} started again (pid {child.process.pid})")
            if not ready_done and self._ready():
                ready_done = True
                subprocess.run(self.when_ready, shell=True, check=False)  # noqa: S602
            time.sleep(0.2)
        return self.stop()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> int:
        say("\n  Stopping every process…")
        for child in self.children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and any(c.process.poll() is None for c in self.children):
            time.sleep(0.1)
        for child in self.children:
            child.signal_group(signal.SIGKILL)
            child.process.wait()
            child.echo_new_lines()
        say("  Stopped.")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procfile", default="Procfile")
    parser.add_argument("--only", default="", help="comma-separated process names")
    parser.add_argument("--log-dir", default="var/log")
    parser.add_argument("--verbose", action="store_true", help="every log line on the console")
    parser.add_argument("--ready-url", default="")
    parser.add_argument("--when-ready", default="", help="shell command run once ready")
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument(
        "--metrics-dir",
        default="",
        help="PROMETHEUS_MULTIPROC_DIR for every process, emptied at start (/metrics adds it up)",
    )
    args = parser.parse_args()
    if args.metrics_dir:
        metrics_dir = Path(args.metrics_dir)
        shutil.rmtree(metrics_dir, ignore_errors=True)  # the last run's processes are gone
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())

    processes = read_procfile(Path(args.procfile))
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        processes = {name: cmd for name, cmd in processes.items() if name in wanted}
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    children = []
    for name, command in processes.items():
        log_path = log_dir / f"{name}.log"
        log_path.write_bytes(b"")  # a fresh log per run
        children.append(Child(name, command, log_path, args.verbose))
    say(
        f"  Starting {', '.join(processes)}; logs in {log_dir}/ "
        f"(the console shows warnings only{'' if not args.verbose else ', verbose on'})."
    )
    if not children:
        return 1
    supervisor = Supervisor(
        children, ready_url=args.ready_url, when_ready=args.when_ready, grace=args.grace
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
