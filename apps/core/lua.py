"""Lua scripts live in .lua files; each is loaded once per process and called by SHA."""

from __future__ import annotations

from pathlib import Path

from redis.commands.core import Script

from . import tracing
from .redis import get_redis

_scripts: dict[Path, Script] = {}


class _TracedScript:
    """A Script whose calls are client spans (only built while tracing is on)."""

    def __init__(self, script: Script, name: str):
        self.script, self.name = script, name

    def __call__(self, *args, **kwargs):
        with tracing.span(f"redis.lua {self.name}", db_system="redis"):
            return self.script(*args, **kwargs)

    def __getattr__(self, attribute):
        return getattr(self.script, attribute)


def lua_script(path: Path) -> Script:
    """A redis-py Script for the file: EVALSHA, with a reload on NOSCRIPT after a restart."""
    script = _scripts.get(path)
    if script is None:
        script = get_redis().register_script(path.read_text())
        if tracing.tracing_enabled():
            script = _TracedScript(script, path.stem)
        _scripts[path] = script
    return script
