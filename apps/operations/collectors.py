"""Per-sale figures for Prometheus, read at scrape time for the watched sales only (a bounded
label set: at most LIVE_SALES_LABELLED sale ids)."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily

from .selectors import sale_figures, sales_watched

logger = logging.getLogger(__name__)

_BREAKER_STATES = {"closed": 0, "probe": 1, "half_open": 1, "open": 2}


class SaleCollector:
    """Units, queue, admissions, money and the breaker of every watched sale."""

    def collect(self):
        gauges = {
            name: GaugeMetricFamily(f"flashsale_sale_{name}", help_text, labels=["sale"])
            for name, help_text in (
                ("units_total", "Units the sale releases."),
                ("units_sold", "Units in paid orders."),
                ("units_held", "Units held by unpaid reservations."),
                ("units_left", "Units free in Redis (-1: pool not built)."),
                ("units_free_db", "Units free in PostgreSQL (unit rows with no order)."),
                ("queue_pre", "Shoppers in the pre-queue (joined before the start)."),
                ("queue_main", "Shoppers waiting in the main lane."),
                ("queue_back", "Shoppers waiting in the back-of-queue lane."),
                ("now_serving", "Queue number served so far (both lanes)."),
                ("active", "Admitted shoppers active now."),
                ("no_shows", "Admissions that ended unused."),
                ("admission_rate_configured", "Admissions per second configured."),
                ("admission_rate_measured", "Admissions per second measured by the releaser."),
                ("admission_paused", "1 while an operator has paused admission."),
                ("expected_wait_seconds", "Wait of the last shopper in line at the measured rate."),
                ("revenue", "Money taken by paid orders, in the sale's currency."),
                ("dead_letters_open", "Payments that ran out of retries, not yet resolved."),
                ("payments_pending_stale", "Payments PENDING past the reconciliation delay."),
                ("live", "1 while the sale is live (not sold out, not ended)."),
                ("starts_timestamp_seconds", "When the sale starts (Unix time)."),
            )
        }
        orders = GaugeMetricFamily(
            "flashsale_sale_orders", "Orders of the sale by status.", labels=["sale", "status"]
        )
        payments = GaugeMetricFamily(
            "flashsale_sale_payment_attempts",
            "Charge attempts of the sale's payments by outcome.",
            labels=["sale", "outcome"],
        )
        breaker = GaugeMetricFamily(
            "flashsale_payment_breaker_state",
            "Payment gateway circuit breaker: 0 closed, 1 probing, 2 open.",
            labels=["gateway"],
        )
        breaker_seen: dict[str, int] = {}
        try:
            sales = sales_watched()
        except Exception:  # PostgreSQL away: the process metrics still go out
            logger.warning("metrics: could not list the watched sales", exc_info=True)
            sales = []
        for sale in sales:
            try:
                f = sale_figures(sale=sale)
            except Exception:
                logger.warning("metrics: could not read sale %s", sale.id, exc_info=True)
                continue
            values = {
                "units_total": f.total_inventory,
                "units_sold": f.units_sold,
                "units_held": f.units_held,
                "units_left": -1 if f.units_left is None else f.units_left,
                "units_free_db": f.units_free_db,
                "queue_pre": f.queue_pre,
                "queue_main": f.queue_main,
                "queue_back": f.queue_back,
                "now_serving": f.now_serving,
                "active": f.active,
                "no_shows": f.no_shows,
                "admission_rate_configured": f.configured_rate,
                "admission_rate_measured": f.measured_rate or 0,
                "admission_paused": int(f.admission_paused),
                "expected_wait_seconds": f.expected_wait_seconds or 0,
                "revenue": float(f.revenue),
                "dead_letters_open": f.dead_letters_open,
                "payments_pending_stale": f.payments_pending_stale,
                "live": int(f.phase == "live"),
                "starts_timestamp_seconds": f.starts_ms / 1000,
            }
            for name, value in values.items():
                gauges[name].add_metric([f.sale_id], value)
            for status, count in f.orders.items():
                orders.add_metric([f.sale_id, status], count)
            for outcome, count in f.payments.items():
                payments.add_metric([f.sale_id, outcome], count)
            for gateway, state in f.breaker.items():
                breaker_seen[gateway] = _BREAKER_STATES.get(state, 0)
        for gateway, state in breaker_seen.items():
            breaker.add_metric([gateway], state)
        yield from gauges.values()
        yield orders
        yield payments
        yield breaker
