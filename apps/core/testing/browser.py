"""Debian's headless Chromium for browser tests and scripts: where it is and how to start it
on a machine whose network reaches nothing but localhost (no background connections)."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
