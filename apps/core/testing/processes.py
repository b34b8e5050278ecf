"""Stopping a server a test or script started: SIGTERM, then SIGKILL if it does not exit."""

from __future__ import annotations

import subprocess


def process_stop(process: subprocess.Popen, *, wait_seconds: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
