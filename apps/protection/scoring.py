"""Bot signals, scored per request and per account (0-100).

Each signal is cheap: headers, two signed cookies the pages set, and a few O(1) Redis
operations per join (a capped set of accounts per IP and per device, a short list of join
times), done
by lua/join_screen.lua in the join's own round trip.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing

from apps.core.redis import sale_key

SEEN_COOKIE = "fs_seen"
DEVICE_COOKIE = "fs_device"
_COOKIE_SALT = "protection.cookie"
WINDOW_SECONDS = 3600
# A suspect's flag is recorded once per shopper and sale this often.
FLAG_MARKER_SECONDS = 60

# Searched in the lower-cased User-Agent: IGNORECASE would cost 13 us on a browser's agent
# (no literal-prefix search), the lower-cased search 1 us.
_SCRIPTED_AGENTS = re.compile(
    r"curl|wget|python|httpx|aiohttp|requests|go-http|okhttp|java/|libwww|scrapy|headless"
    r"|phantomjs|node-fetch|axios|postman|insomnia|bot\b|spider|crawler"
)
_BROWSER_AGENTS = re.compile(r"Mozilla/5\.0 .*(Chrome|Firefox|Safari|Edg)/", re.IGNORECASE)

WEIGHTS = {
    "no_user_agent": 35,
    "scripted_user_agent": 40,
    "no_accept_language": 15,
    "inconsistent_browser_headers": 20,
    "no_page_load": 30,
    "page_load_too_recent": 15,
    "many_accounts_per_ip": 25,
    "many_accounts_per_device": 40,
    "regular_timing": 25,
    "honeypot": 100,
}


@dataclass
class Score:
    value: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        self.reasons.append(reason)
        self.value = min(100, self.value + WEIGHTS[reason])


def cookie_sign(value: str) -> str:
    return signing.Signer(salt=_COOKIE_SALT).sign(value)


def cookie_read(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return signing.Signer(salt=_COOKIE_SALT).unsign(raw)
    except signing.BadSignature:
        return None


def header_signals(request, score: Score) -> None:
    # From META: request.headers would copy every header into a new mapping first.
    meta = request.META
    agent = meta.get("HTTP_USER_AGENT", "")
    if not agent:
        score.add("no_user_agent")
    elif _SCRIPTED_AGENTS.search(agent.lower()):
        score.add("scripted_user_agent")
    if not meta.get("HTTP_ACCEPT_LANGUAGE"):
        score.add("no_accept_language")
    # A browser that says it is a modern one sends Fetch Metadata with its API calls.
    if agent and _BROWSER_AGENTS.search(agent) and not meta.get("HTTP_SEC_FETCH_SITE"):
        score.add("inconsistent_browser_headers")


def page_signals(request, score: Score) -> None:
    seen = cookie_read(request.COOKIES.get(SEEN_COOKIE))
    if seen is None:
        score.add("no_page_load")
        return
    try:
        loaded_at = float(seen)
    except ValueError:
        score.add("no_page_load")
        return
    if time.time() - loaded_at < settings.BOT_MIN_PAGE_SECONDS:
        score.add("page_load_too_recent")


def flags_waiting_key(sale_id: object) -> str:
    """The sale's flags waiting to be recorded in PostgreSQL (a list of JSON records)."""
    return sale_key(sale_id, "bot", "flags")


def request_score(*, request, body: dict) -> Score:
    """What the request alone says (honeypot, headers, page load); the account signals are
    added in Redis by lua/join_screen.lua."""
    score = Score()
    if body.get("website"):
        score.add("honeypot")
    header_signals(request, score)
    page_signals(request, score)
    return score


def screen_keys(
    *, request, sale_id: object, user_id: int, ip: str, spent_key: str | None
) -> tuple[list[str], bool]:
    """KEYS of lua/join_screen.lua (named from one prefix: a join names six), and whether the
    request names a device (its signed cookie)."""
    device = cookie_read(request.COOKIES.get(DEVICE_COOKIE))
    bot = sale_key(sale_id, "bot")
    return [
        f"{bot}:ip-accts:{ip}",
        f"{bot}:ip-times:{ip}",
        f"{bot}:device-accts:{device or '-'}",
        f"{bot}:flagged:{user_id}",  # the flag's once-a-minute marker
        spent_key or f"{bot}:no-challenge",  # untouched without a challenge to spend
        flags_waiting_key(sale_id),
    ], device is not None
