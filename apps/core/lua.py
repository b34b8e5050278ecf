"""Lua scripts live in .lua files; each is loaded once per process and called by SHA."""

from __future__ import annotations

from pathlib import Path

from redis.commands.core import Script

from .redis import get_redis

_scripts: dict[Path, Script] = {}


def lua_script(path: Path) -> Script:
    """A redis-py Script for the file: EVALSHA, with a reload on NOSCRIPT after a restart."""
    script = _scripts.get(path)
    if script is None:
        script = get_redis().register_script(path.read_text())
        _scripts[path] = script
    return script
