"""Why the shopper was sent to sign in, from the page they were going to."""

import re

from django import template

from apps.sales.selectors import sale_snapshot

register = template.Library()

_SALE_PAGE = re.compile(r"^/sales/([0-9a-f-]{36})/(queue/)?$")


@register.simple_tag
def login_reason(next_url: str | None) -> str:
    next_url = next_url or ""
    match = _SALE_PAGE.match(next_url)
    if match:
        sale = sale_snapshot(match.group(1))
        if sale is not None:
            return f"Sign in to join the queue for {sale.title}."
    if next_url.startswith("/orders/") and next_url.endswith("/pay/"):
        return "Sign in to pay for your reservation."
    if next_url.startswith("/orders/"):
        return "Sign in to see your orders."
    return "Sign in to join a sale's waiting room and buy."
