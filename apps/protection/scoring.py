"""Bot signals, scored per request and per account (0-100).

Each signal is cheap: headers, two signed cookies the pages set, and a few O(1) Redis
operations per join (a HyperLogLog per IP and per device, a short list of join times).
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing

from apps.core.redis import RedisError, sale_key, script_pipeline

SEEN_COOKIE = "fs_seen"
DEVICE_COOKIE = "fs_device"
_COOKIE_SALT = "protection.cookie"
WINDOW_SECONDS = 3600
# A suspect's flag is recorded once per shopper and sale this often.
FLAG_MARKER_SECONDS = 60

_SCRIPTED_AGENTS = re.compile(
    r"curl|wget|python|httpx|aiohttp|requests|go-http|okhttp|java/|libwww|scrapy|headless"
    r"|phantomjs|node-fetch|axios|postman|insomnia|bot\b|spider|crawler",
    re.IGNORECASE,
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
    # When the cheap signals alone already made the request a suspect, the flag's
    # once-a-minute marker is set in the account signals' round trip: True when this request
    # set it (its flag is to be recorded), False when it was already set, None when not tried.
    flag_marked: bool | None = None

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
    agent = request.headers.get("User-Agent", "")
    if not agent:
        score.add("no_user_agent")
    elif _SCRIPTED_AGENTS.search(agent):
        score.add("scripted_user_agent")
    if not request.headers.get("Accept-Language"):
        score.add("no_accept_language")
    # A browser that says it is a modern one sends Fetch Metadata with its API calls.
    if agent and _BROWSER_AGENTS.search(agent) and not request.headers.get("Sec-Fetch-Site"):
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


def flag_marker_key(sale_id: object, user_id: int) -> str:
    return sale_key(sale_id, "bot", "flagged", user_id)


def account_signals(
    *, request, sale_id: object, user_id: int, ip: str, score: Score, flag: bool = False
) -> None:
    """Accounts per IP and per device cookie, and the regularity of joins from one IP; with
    ``flag``, the flag's once-a-minute marker in the same round trip."""
    device = cookie_read(request.COOKIES.get(DEVICE_COOKIE))
    ip_accounts = sale_key(sale_id, "bot", "ip-accounts", ip)
    ip_times = sale_key(sale_id, "bot", "ip-times", ip)
    now = time.time()
    try:
        # One sale's keys, one slot: a pipeline on its node (PFCOUNT is refused in a cluster
        # pipeline).
        pipe = script_pipeline(ip_accounts)
        pipe.pfadd(ip_accounts, user_id)
        pipe.pfcount(ip_accounts)
        pipe.expire(ip_accounts, WINDOW_SECONDS)
        pipe.lpush(ip_times, f"{now:.3f}")
        pipe.ltrim(ip_times, 0, 7)
        pipe.lrange(ip_times, 0, 7)
        pipe.expire(ip_times, WINDOW_SECONDS)
        if device:
            device_accounts = sale_key(sale_id, "bot", "device-accounts", device)
            pipe.pfadd(device_accounts, user_id)
            pipe.pfcount(device_accounts)
            pipe.expire(device_accounts, WINDOW_SECONDS)
        if flag:
            pipe.set(flag_marker_key(sale_id, user_id), 1, nx=True, ex=FLAG_MARKER_SECONDS)
        results = pipe.execute()
    except RedisError:
        return  # these signals are extra; the join itself needs Redis and will say so
    if results[1] > settings.BOT_ACCOUNTS_PER_IP:
        score.add("many_accounts_per_ip")
    if device and results[8] > settings.BOT_ACCOUNTS_PER_DEVICE:
        score.add("many_accounts_per_device")
    if timing_is_regular([float(t) for t in results[5]]):
        score.add("regular_timing")
    if flag:
        score.flag_marked = bool(results[-1])


def timing_is_regular(times: list[float]) -> bool:
    """Six or more joins whose gaps vary by under 5%: a loop with a sleep, not people."""
    if len(times) < 6:
        return False
    times = sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    mean = statistics.fmean(gaps)
    if mean <= 0 or mean > 30:
        return mean <= 0
    return statistics.pstdev(gaps) / mean < 0.05


def request_score(
    *, request, sale_id: object, user_id: int, ip: str, body: dict, threshold: int = 101
) -> Score:
    """The request's score; when the signals read from the request alone reach
    ``threshold``, the flag's marker is set in the one Redis round trip (Score.flag_marked)."""
    score = Score()
    if body.get("website"):
        score.add("honeypot")
    header_signals(request, score)
    page_signals(request, score)
    account_signals(
        request=request,
        sale_id=sale_id,
        user_id=user_id,
        ip=ip,
        score=score,
        flag=score.value >= threshold,
    )
    return score
