"""The public pages' memory: the list and sale pages (and the waiting room's public
now_serving figure) are the same bytes for every anonymous shopper, so a process renders each
at most once per ``PUBLIC_PAGE_SECONDS`` and hands the same bytes to everyone who asks
meanwhile (the herd's thousands of page loads in the start second cost one render per
process, not one each).

One thread per page renders; the threads that arrive while it does wait for it and take its
result, so an empty memory at the start second is still one render, not one per thread."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpResponse

from apps.core.memory import ProcessMemory


@dataclass(frozen=True)
class RenderedPage:
    content: bytes
    content_type: str
    cache_control: str


_pages = ProcessMemory("public_pages", seconds="PUBLIC_PAGE_SECONDS", maxsize=1_000)
# One lock per page being rendered; it lives as long as a thread holds it.
_render_locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_render_locks_guard = threading.Lock()


def _render_lock(key: str) -> threading.Lock:
    with _render_locks_guard:
        lock = _render_locks.get(key)
        if lock is None:
            lock = _render_locks[key] = threading.Lock()
        return lock


def _rendered(response: HttpResponse) -> RenderedPage:
    return RenderedPage(
        content=response.content,
        content_type=response["Content-Type"],
        cache_control=response.get("Cache-Control", ""),
    )


def public_page(key: str, render: Callable[[], HttpResponse]) -> HttpResponse:
    """The page under ``key``, rendered by ``render`` at most once per period per process.
    Only a 200 answer is remembered; ``render`` must not depend on who is asking."""
    page = _pages.get(key)
    if page is None:
        lock = _render_lock(key)
        with lock:
            page = _pages.get(key)  # rendered by another thread while this one waited
            if page is None:
                response = render()
                if response.status_code != 200:
                    return response
                page = _rendered(response)
                _pages.set(key, page)
    response = HttpResponse(page.content, content_type=page.content_type)
    if page.cache_control:
        response["Cache-Control"] = page.cache_control
    return response
