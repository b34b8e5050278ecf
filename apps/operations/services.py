"""The operator's controls on a live sale, each one audited and announced on the events feed,
and the job that notices a sale's own events (started, sold out, ended, dead letters)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.core.errors import ApplicationError, BadRequest
from apps.payments.models import DeadLetter
from apps.sales.models import FlashSale, SaleStatus
from apps.sales.services import sale_cancel, sale_publish

from .models import OperatorAction, SaleEvent, SaleEventKind
from .selectors import sale_figures, sales_watched

MAX_ADMISSION_RATE = 100_000


def sale_event_record(*, sale_id: object, kind: str, dedupe_key: str, data: dict | None = None):
    """Records the event once: a second call with the same key is a no-op."""
    try:
        with transaction.atomic():
            return SaleEvent.objects.create(
                sale_id=sale_id, kind=kind, dedupe_key=dedupe_key, data=data or {}
            )
    except IntegrityError:
        return None


def _audit(*, sale: FlashSale, actor, action: str, before: dict, after: dict) -> OperatorAction:
    return OperatorAction.objects.create(
        sale=sale, actor=actor, action=action, before=before, after=after
    )


@transaction.atomic
def sale_admission_pause(*, sale_id: object, actor, paused: bool) -> FlashSale:
    sale = FlashSale.objects.select_for_update().get(id=sale_id)
    if sale.status in (SaleStatus.CANCELLED, SaleStatus.COMPLETED):
        raise ApplicationError("The sale is over.", status=409, code="sale_closed")
    if sale.admission_paused == paused:
        return sale  # already so: nothing to audit twice
    FlashSale.objects.filter(id=sale.id).update(admission_paused=paused)
    action = _audit(
        sale=sale,
        actor=actor,
        action="pause_admission" if paused else "resume_admission",
        before={"admission_paused": sale.admission_paused},
        after={"admission_paused": paused},
    )
    sale_event_record(
        sale_id=sale.id,
        kind=SaleEventKind.ADMISSION_PAUSED if paused else SaleEventKind.ADMISSION_RESUMED,
        dedupe_key=f"action:{action.id}",
        data={"by": getattr(actor, "username", "")},
    )
    sale.refresh_from_db()
    return sale


@transaction.atomic
def sale_admission_rate_set(*, sale_id: object, actor, rate: int) -> FlashSale:
    if not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= MAX_ADMISSION_RATE:
        raise BadRequest(
            f"The admission rate is a whole number of shoppers per second, 1 to "
            f"{MAX_ADMISSION_RATE}.",
            code="invalid_admission_rate",
        )
    sale = FlashSale.objects.select_for_update().get(id=sale_id)
    if sale.status in (SaleStatus.CANCELLED, SaleStatus.COMPLETED):
        raise ApplicationError("The sale is over.", status=409, code="sale_closed")
    if sale.admission_rate == rate:
        return sale
    FlashSale.objects.filter(id=sale.id).update(admission_rate=rate)
    action = _audit(
        sale=sale,
        actor=actor,
        action="set_admission_rate",
        before={"admission_rate": sale.admission_rate},
        after={"admission_rate": rate},
    )
    sale_event_record(
        sale_id=sale.id,
        kind=SaleEventKind.ADMISSION_RATE_CHANGED,
        dedupe_key=f"action:{action.id}",
        data={"from": sale.admission_rate, "to": rate},
    )
    transaction.on_commit(lambda: sale_publish(sale_id=sale.id))
    sale.refresh_from_db()
    return sale


@transaction.atomic
def sale_cancel_by_operator(*, sale_id: object, actor) -> FlashSale:
    before = FlashSale.objects.get(id=sale_id).status
    sale = sale_cancel(sale_id=sale_id)
    _audit(
        sale=sale,
        actor=actor,
        action="cancel",
        before={"status": before},
        after={"status": sale.status},
    )
    sale_event_record(
        sale_id=sale.id, kind=SaleEventKind.CANCELLED, dedupe_key=f"cancelled:{sale.id}"
    )
    return sale


def sale_events_notice() -> int:
    """Records the events of the watched sales that happened since the last run (started, sold
    out, ended, new dead letters). Safe to run twice or at once: each event has its own key."""
    recorded = 0
    for sale in sales_watched() + list(
        FlashSale.objects.filter(status=SaleStatus.COMPLETED).order_by("-end_time")[:5]
    ):
        figures = sale_figures(sale=sale)
        checks = [
            (figures.phase in ("live", "sold_out", "ended"), SaleEventKind.STARTED, "started"),
            (figures.units_left == 0, SaleEventKind.SOLD_OUT, "sold_out"),
            (figures.phase == "ended", SaleEventKind.ENDED, "ended"),
        ]
        for happened, kind, name in checks:
            if happened and sale_event_record(
                sale_id=sale.id, kind=kind, dedupe_key=f"{name}:{sale.id}", data=_brief(figures)
            ):
                recorded += 1
        for letter in DeadLetter.objects.filter(payment__order__sale_id=sale.id).values(
            "id", "payment_id", "reason"
        ):
            if sale_event_record(
                sale_id=sale.id,
                kind=SaleEventKind.PAYMENT_DEAD_LETTERED,
                dedupe_key=f"dead_letter:{letter['id']}",
                data={"payment_id": str(letter["payment_id"]), "reason": letter["reason"]},
            ):
                recorded += 1
    return recorded


def _brief(figures) -> dict:
    return {
        "units_sold": figures.units_sold,
        "units_held": figures.units_held,
        "units_left": figures.units_left,
        "now_serving": figures.now_serving,
    }
