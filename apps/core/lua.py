"""Lua scripts live in .lua files, as module-level redis-py ``Script`` objects.

The SHA is computed once from the file; each call runs EVALSHA on the client it is given (a
pipeline, say) or on the process's current ``get_redis()``, and loads the script when the
server answers NOSCRIPT (a restart, another server). Nothing is bound to the first client
seen, so a test that swaps Redis has nothing to clear.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from redis.commands.core import Script

from . import tracing
from .redis import get_redis, script_run


class LuaScript(Script):
    """A .lua file as a redis-py Script bound at call time; each call is a client span while
    tracing is on."""

    def __init__(self, path: Path):
        # Script.__init__ would ask a client for its encoder; the files are UTF-8.
        self.path = path
        self.name = path.stem
        self.script = path.read_text()
        self.sha = hashlib.sha1(self.script.encode()).hexdigest()

    @property
    def registered_client(self):
        return get_redis()

    def __call__(self, keys=None, args=None, client=None):
        if client is None:
            client = get_redis()
        if tracing.tracing_enabled():
            with tracing.span(f"redis.lua {self.name}", db_system="redis"):
                return script_run(client, self, keys or [], args or [])
        return script_run(client, self, keys or [], args or [])

    def run_through(self, client, keys, args):
        """The call through redis-py's own client (a pipeline, a cluster)."""
        return super().__call__(keys, args, client)

    def __repr__(self) -> str:
        return f"<LuaScript {self.name} {self.sha[:8]}>"
