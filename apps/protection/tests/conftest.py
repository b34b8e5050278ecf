from __future__ import annotations

import pytest

from apps.core.testing.tcp_proxy import TcpProxy


@pytest.fixture
def tcp_proxy():
    """make(host, port) → a TcpProxy in front of that server, closed after the test."""
    proxies = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def purchase_auth(user, sale) -> dict:
    """Authorization for a purchase: an admission token once the waiting room issues them,
    else the shopper's token."""
    try:
        from apps.waiting_room.tokens import admission_token_issue
    except ImportError:
        from conftest import bearer

        return bearer(user)
    token, _ = admission_token_issue(user_id=user.id, sale_id=str(sale.id), lifetime_seconds=120)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
