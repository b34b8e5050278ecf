"""Stopping a server a test or script started: SIGTERM, then SIGKILL if it does not exit.

A server started with ``start_new_session=True`` leads its own process group; the signal goes
to the whole group, so the workers it forked (granian's, daphne's) never outlive it."""

from __future__ import annotations

import os
import signal
import subprocess


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
            return
    except ProcessLookupError:
        return
    process.send_signal(signum)


def process_stop(process: subprocess.Popen, *, wait_seconds: float = 10.0) -> None:
    if process.poll() is None:
        _signal(process, signal.SIGTERM)
        try:
            process.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
            process.wait()
