"""Payments: create a charge request, run one gateway attempt, settle the outcome, refund,
dead-letter, reconcile. Every write is a conditional UPDATE or guarded by a unique
constraint, so a task redelivered after a crash, or run twice at once, changes nothing the
second time; the gateway's idempotency key makes the charge itself happen at most once."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apps.core import metrics
from apps.core.errors import (
    ApplicationError,
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)
from apps.orders.models import Order, OrderStatus
from apps.orders.notifications import order_notify_on_commit
from apps.orders.services import TransitionLost, order_transition

from .gateways.base import (
    CardRefused,
    ChargeRecord,
    GatewayError,
    GatewayRejected,
    gateway_get,
    gateway_names,
)
from .models import (
    AttemptOutcome,
    DeadLetter,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    RefundOrigin,
)
from .redis_scripts import breaker_allow, breaker_record, job_lock

logger = logging.getLogger(__name__)
_WORKER = f"{socket.gethostname()}:{os.getpid()}"


# --- creating a payment -----------------------------------------------------------------
_ASCII_DIGITS = frozenset("0123456789")

# What a shopper reads for each card error or decline code: plain words, no codes.
CARD_MESSAGES = {
    "card_declined": "Your card was declined. Try another card.",
    "incorrect_number": "Your card number is incorrect. Check it and try again.",
    "invalid_expiry_month": "Your card's expiry date is not valid. Check it and try again.",
    "invalid_expiry_year": "Your card's expiry date is not valid. Check it and try again.",
    "expired_card": "Your card has expired. Try another card.",
    "invalid_cvc": "Your card's security code is not valid. Check it and try again.",
    "incorrect_cvc": "Your card's security code is incorrect. Check it and try again.",
}


def card_message(code: str) -> str:
    return CARD_MESSAGES.get(code, CARD_MESSAGES["card_declined"])


@sensitive_variables("card_number", "number")
def card_number_clean(card_number: object) -> str:
    """ASCII digits only: str.isdigit() also takes full-width and other scripts' digits,
    which no card network issues."""
    number = str(card_number or "").replace(" ", "").replace("-", "")
    if not set(number) <= _ASCII_DIGITS or not 12 <= len(number) <= 19:
        raise BadRequest("card_number must be 12 to 19 digits.", code="invalid_card_number")
    return number


def payment_idempotency_key(*, order_id: object, client_key: str) -> str:
    """The gateway key: derived from the order (and the client's key, so a second card after
    a decline is a new charge), identical on every attempt of one payment."""
    digest = hashlib.sha256(client_key.encode()).hexdigest()[:16]
    return f"order-{order_id}-{digest}"


@sensitive_variables("card")
def _card_client_key(card: str) -> str:
    """The default client key (one payment per card and order): a keyed hash, so the
    stored key does not let anyone recover the number by trying numbers."""
    digest = hmac.new(settings.SECRET_KEY.encode(), card.encode(), hashlib.sha256).hexdigest()
    return f"card-{digest[:24]}"


@dataclass(frozen=True)
class CardTokens:
    brand: str
    last4: str
    tokens: dict[str, str]


@sensitive_variables("card", "cvc")
def card_tokenize(
    *, card: str, exp_month: int | str | None, exp_year: int | str | None, cvc: str, name: str
) -> CardTokens:
    """Send the card to every configured gateway's vault (primary first) and keep the
    tokens, so a charge can still go to the backup. The gateway decides validity: a card
    error refuses the request (402, nothing written); when no gateway answers, 503."""
    tokens: dict[str, str] = {}
    token = None
    for gateway_name in gateway_names():
        try:
            token = gateway_get(gateway_name).tokenize(
                number=card, exp_month=exp_month, exp_year=exp_year, cvc=cvc, name=name
            )
        except CardRefused as refused:
            raise ApplicationError(
                card_message(refused.code), code=refused.code, status=402
            ) from None
        except (GatewayError, GatewayRejected) as exc:
            logger.warning("tokenizing on %s failed: %s", gateway_name, exc)
            continue
        tokens[gateway_name] = token.token
    if token is None or not tokens:
        raise ServiceUnavailable(
            "The payment service is not answering. Nothing was charged; try again shortly.",
            code="payment_unavailable",
            retry_after=5,
        )
    return CardTokens(brand=token.brand, last4=token.last4, tokens=tokens)


@sensitive_variables("card_number", "card", "cvc")
def payment_create(
    *,
    order_id: object,
    user_id: int,
    card_number: object,
    exp_month: int | str | None = None,
    exp_year: int | str | None = None,
    cvc: str = "",
    cardholder_name: str = "",
    client_key: str = "",
) -> tuple[Payment, bool]:
    """A PENDING payment for the shopper's reserved order, its charge queued on commit.
    The card goes to the gateway first (tokenize); only its token, brand and last four
    digits are written, and the charge task gets the payment's id alone.
    Replays (same order and client key) return the first payment. Returns (payment, created)."""
    card = card_number_clean(card_number)
    cvc = str(cvc or "")
    if cvc and not set(cvc) <= _ASCII_DIGITS:
        raise ApplicationError(card_message("invalid_cvc"), code="invalid_cvc", status=402)
    client_key = (client_key or _card_client_key(card))[:255]
    existing = Payment.objects.filter(order_id=order_id, client_key=client_key).first()
    if existing is not None:
        if existing.user_id != user_id:
            raise NotFound("No such order.", code="order_not_found")
        if existing.card_last4 != card[-4:]:
            raise Unprocessable(
                "This idempotency key was used with another card.", code="idempotency_key_reused"
            )
        return existing, False
    # Refuse what is refused anyway before sending the card anywhere (re-checked under lock).
    _order_payable_or_raise(order_id=order_id, user_id=user_id, lock=False)
    tokenized = card_tokenize(
        card=card, exp_month=exp_month, exp_year=exp_year, cvc=cvc, name=cardholder_name
    )
    try:
        with transaction.atomic():
            order = _order_payable_or_raise(order_id=order_id, user_id=user_id, lock=True)
            payment = Payment.objects.create(
                order=order,
                user_id=user_id,
                amount=order.amount,
                currency=order.currency,
                client_key=client_key,
                idempotency_key=payment_idempotency_key(order_id=order.id, client_key=client_key),
                card_brand=tokenized.brand[:16],
                card_last4=tokenized.last4[-4:],
                gateway_tokens=tokenized.tokens,
                gateway=next(iter(tokenized.tokens)),
            )
            transaction.on_commit(lambda: payment_enqueue(payment_id=payment.id))
    except IntegrityError:
        # A concurrent request with the same key won, or the order was just paid.
        existing = Payment.objects.filter(order_id=order_id, client_key=client_key).first()
        if existing is not None:
            return existing, False
        raise Conflict("This order already has a payment.", code="payment_in_progress") from None
    return payment, True


def _order_payable_or_raise(*, order_id: object, user_id: int, lock: bool) -> Order:
    orders = Order.objects.select_for_update() if lock else Order.objects
    order = (
        orders.filter(id=order_id, user_id=user_id)
        .annotate(open=ExpressionWrapper(Q(reserved_until__gt=Now()), output_field=BooleanField()))
        .first()
    )
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    _order_refuse_unless_payable(order)
    live = Payment.objects.filter(order=order, status=PaymentStatus.PENDING).first()
    if live is not None:
        raise Conflict(
            "A payment for this order is already being processed.",
            code="payment_in_progress",
            extra={"payment_id": str(live.id)},
        )
    return order


def _order_refuse_unless_payable(order: Order) -> None:
    if order.status == OrderStatus.PAID or order.status == OrderStatus.FULFILLED:
        raise Conflict("This order is already paid.", code="order_already_paid")
    if order.status != OrderStatus.RESERVED:
        raise Gone(
            f"This reservation is {order.status.lower()}; nothing was charged.",
            code=f"reservation_{order.status.lower()}",
        )
    if not order.open:  # by the database's clock
        raise Gone("This reservation has expired; nothing was charged.", code="reservation_expired")


# The tasks (tasks.py) call this module, and this module enqueues them by name, so the
# imports run one way. PaymentsConfig.ready imports the tasks: an eager install runs them.
CHARGE_TASK = "payments.charge"
REFUND_TASK = "payments.refund"


def payment_enqueue(*, payment_id: object, gateway: str | None = None, countdown: float = 0):
    try:
        current_app.signature(
            CHARGE_TASK, args=[str(payment_id)], kwargs={"gateway": gateway}
        ).apply_async(countdown=countdown or None)
    except Exception:  # noqa: BLE001 - the broker being down: reconciliation re-enqueues
        logger.warning("could not enqueue charge of payment %s", payment_id, exc_info=True)


# --- whose charge is it -------------------------------------------------------------------
def charge_metadata(payment: Payment) -> dict:
    """Sent with every charge: who we are and which payment of ours it is. A provider
    account may be shared (staging beside production, two installs on one gateway), so this
    is how reconciliation tells our charges from everyone else's."""
    return {
        "merchant_id": settings.PAYMENT_MERCHANT_ID,
        "payment_key": payment.idempotency_key,
        "payment_id": str(payment.id),
        "order_id": str(payment.order_id),
    }


def charge_is_ours(record: ChargeRecord, payment: Payment | None) -> bool:
    """Provably ours: our merchant id, and the key names one of our payments (the very one
    the charge says it is for)."""
    return (
        payment is not None
        and record.merchant_id == settings.PAYMENT_MERCHANT_ID
        and record.idempotency_key == payment.idempotency_key
        and str(record.metadata.get("payment_id") or payment.id) == str(payment.id)
    )


# --- one charge attempt -------------------------------------------------------------------
@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # succeeded | declined | retry | dead_letter | settled | skipped
    # A retry's delay when it is known (the circuit's open period); None: the task's
    # exponential backoff decides.
    retry_in: float | None = None
    detail: str = ""


def _attempt_log(
    payment_id, *, gateway, outcome, kind="charge", http_status=None, detail="", started=None
) -> None:
    PaymentAttempt.objects.create(
        payment_id=payment_id,
        kind=kind,
        gateway=gateway,
        outcome=outcome,
        http_status=http_status,
        detail=str(detail)[:255],
        duration_ms=int((time.monotonic() - started) * 1000) if started else 0,
        worker=_WORKER[:64],
    )
    metrics.payment_outcomes.labels(f"{kind}_{outcome}").inc()


def _order_past_bound(order: Order) -> bool:
    grace = timedelta(seconds=settings.PAYMENT_SETTLE_GRACE_SECONDS)
    return Order.objects.filter(id=order.id, reserved_until__lt=Now() - grace).exists()


def _gateway_choose(names: list[str]) -> tuple[str | None, float]:
    """The gateway to call now (the first of names whose circuit allows: the preferred one,
    else primary, else backup while the primary's circuit is open), or (None, seconds until
    one may be tried)."""
    waits = []
    for name in names:
        state = breaker_allow(name)
        if state.state == "closed":
            return name, 0.0
        if state.state == "probe":
            if _gateway_probe(name):
                return name, 0.0
            continue
        waits.append(state.wait_seconds)
    return None, min(waits) if waits else 1.0


def _gateway_probe(name: str) -> bool:
    """The half-open trial: a harmless lookup rather than a shopper's charge. Success closes
    the circuit; failure opens it for another period."""
    try:
        gateway_get(name).lookup(idempotency_key="breaker-probe")
    except GatewayError:
        breaker_record(name, success=False)
        return False
    breaker_record(name, success=True)
    return True


def payment_charge_attempt(*, payment_id: object, gateway: str | None = None) -> AttemptResult:
    """Run one attempt of a payment's charge. Safe to run twice or at once: the payment is
    settled by conditional UPDATEs and the gateway dedupes by the payment's key."""
    payment = Payment.objects.select_related("order").filter(id=payment_id).first()
    if payment is None or payment.status != PaymentStatus.PENDING:
        return AttemptResult("skipped")
    order = payment.order
    if order.status != OrderStatus.RESERVED:
        if payment.attempts == 0:
            _payment_fail(payment, code="reservation_ended", reason="the reservation ended first")
            return AttemptResult("settled", detail="reservation ended before any charge")
        # A charge may have landed: settle by what the gateway knows, never charge anew.
        return payment_settle_from_gateway(payment_id=payment.id) or AttemptResult(
            "settled", detail="reservation ended; no charge found"
        )

    tokens = payment.gateway_tokens or {}
    names = [n for n in ([gateway] if gateway else gateway_names()) if n in tokens]
    if not names:
        # No token for any gateway we may use (a payment from before tokens, whose number
        # was masked): settle by what a gateway knows, else ask for the card again.
        if payment.attempts:
            settled = payment_settle_from_gateway(payment_id=payment.id)
            if settled is not None:
                return settled
        _payment_fail(
            payment, code="card_unavailable", reason="Please enter your card again to pay."
        )
        return AttemptResult("settled", detail="no card token for this gateway")
    name, wait = _gateway_choose(names)
    if name is None:
        Payment.objects.filter(id=payment.id).update(updated_at=Now())
        if _order_past_bound(order):
            payment_dead_letter(payment_id=payment.id, reason="circuit open past the bound")
            return AttemptResult("dead_letter", detail="circuit open")
        return AttemptResult("retry", retry_in=wait + random.uniform(0, 1.0), detail="circuit")

    attempt = Payment.objects.filter(id=payment.id, status=PaymentStatus.PENDING).update(
        attempts=F("attempts") + 1, gateway=name, updated_at=Now()
    )
    if not attempt:
        return AttemptResult("skipped")
    attempts = payment.attempts + 1
    started = time.monotonic()
    try:
        result = gateway_get(name).charge(
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
            source=tokens[name],
            metadata=charge_metadata(payment),
        )
    except GatewayError as exc:
        in_progress = exc.http_status == 409
        if not in_progress:
            breaker_record(name, success=False)
        _attempt_log(
            payment.id,
            gateway=name,
            outcome=AttemptOutcome.TIMEOUT if exc.kind == "timeout" else AttemptOutcome.ERROR,
            http_status=exc.http_status,
            detail=str(exc),
            started=started,
        )
        if in_progress:
            # Our earlier request with this key is still being processed (a slow charge the
            # client gave up on): this call tried nothing, so it is not counted against the
            # attempts; look again after the backoff, until the reservation's bound.
            Payment.objects.filter(id=payment.id, attempts__gt=0).update(attempts=F("attempts") - 1)
            if _order_past_bound(order):
                payment_dead_letter(payment_id=payment.id, reason=f"still in progress: {exc}")
                return AttemptResult("dead_letter", detail=str(exc))
            return AttemptResult("retry", detail=str(exc))
        if attempts >= settings.PAYMENT_MAX_ATTEMPTS:
            payment_dead_letter(payment_id=payment.id, reason=f"{attempts} attempts: {exc}")
            return AttemptResult("dead_letter", detail=str(exc))
        return AttemptResult("retry", detail=str(exc))
    except GatewayRejected as exc:
        breaker_record(name, success=True)  # the gateway answered; our request was wrong
        _attempt_log(
            payment.id,
            gateway=name,
            outcome=AttemptOutcome.ERROR,
            http_status=exc.http_status,
            detail=str(exc),
            started=started,
        )
        payment_dead_letter(payment_id=payment.id, reason=str(exc))
        return AttemptResult("dead_letter", detail=str(exc))

    breaker_record(name, success=True)
    _attempt_log(
        payment.id,
        gateway=name,
        outcome=AttemptOutcome.SUCCEEDED if result.succeeded else AttemptOutcome.DECLINED,
        http_status=result.http_status,
        detail=result.charge_id if result.succeeded else result.decline_code,
        started=started,
    )
    if result.succeeded:
        payment_settle_success(payment_id=payment.id, charge_id=result.charge_id, gateway=name)
        return AttemptResult("succeeded")
    payment_settle_decline(payment_id=payment.id, code=result.decline_code or "declined")
    return AttemptResult("declined", detail=result.decline_code)


# --- settling ------------------------------------------------------------------------------
def payment_settle_success(*, payment_id: object, charge_id: str, gateway: str) -> str:
    """The gateway took the money. Order RESERVED → PAID; if the order is no longer
    RESERVED (expired, cancelled, paid by another charge) the money goes back.
    Returns "paid", "refunding" or "already"."""
    refund = False
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("order").get(id=payment_id)
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
            if payment.gateway_charge_id == charge_id:
                return "already"
            # A second charge for one payment (e.g. on the backup): give it back.
            transaction.on_commit(lambda: charge_refund_stray(gateway=gateway, charge_id=charge_id))
            return "refunding"
        try:
            with transaction.atomic():
                Payment.objects.filter(id=payment.id).update(
                    status=PaymentStatus.SUCCEEDED,
                    gateway=gateway,
                    gateway_charge_id=charge_id,
                    failure_code="",
                    failure_reason="",
                    settled_at=Now(),
                    updated_at=Now(),
                )
        except IntegrityError:
            # Another payment of this order is live: this one's money goes back.
            Payment.objects.filter(id=payment.id).update(
                gateway=gateway, gateway_charge_id=charge_id, updated_at=Now()
            )
            refund = True
        if not refund:
            try:
                order_transition(
                    order_id=payment.order_id,
                    from_status=OrderStatus.RESERVED,
                    to_status=OrderStatus.PAID,
                    reason=f"paid by payment {payment.id}",
                )
                order_notify_on_commit(order_id=payment.order_id, event="paid")
                return "paid"
            except TransitionLost:
                refund = True
    transaction.on_commit(lambda: payment_refund_now_or_later(payment_id=payment_id))
    return "refunding"


def payment_settle_decline(*, payment_id: object, code: str) -> bool:
    """The card was declined: payment FAILED; the reservation is released at once (unless
    PAYMENT_DECLINE_RELEASES is off) and the shopper told. Idempotent."""
    with transaction.atomic():
        moved = Payment.objects.filter(id=payment_id, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED,
            failure_code=code[:64],
            failure_reason=card_message(code),
            settled_at=Now(),
            updated_at=Now(),
        )
        if not moved:
            return False
        order_id = Payment.objects.values_list("order_id", flat=True).get(id=payment_id)
        if settings.PAYMENT_DECLINE_RELEASES:
            try:
                order_transition(
                    order_id=order_id,
                    from_status=OrderStatus.RESERVED,
                    to_status=OrderStatus.CANCELLED,
                    reason=f"payment declined: {code}",
                )
            except TransitionLost:
                pass
        order_notify_on_commit(order_id=order_id, event="declined", detail=card_message(code))
    return True


def _payment_fail(payment: Payment, *, code: str, reason: str, release: bool = False) -> bool:
    with transaction.atomic():
        moved = Payment.objects.filter(id=payment.id, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED,
            failure_code=code,
            failure_reason=reason[:255],
            settled_at=Now(),
            updated_at=Now(),
        )
        if moved and release:
            try:
                order_transition(
                    order_id=payment.order_id,
                    from_status=OrderStatus.RESERVED,
                    to_status=OrderStatus.CANCELLED,
                    reason=f"payment could not be completed: {reason}"[:255],
                )
            except TransitionLost:
                pass
            order_notify_on_commit(order_id=payment.order_id, event="failed", detail=reason)
    return bool(moved)


def payment_settle_from_gateway(*, payment_id: object) -> AttemptResult | None:
    """Settle a payment by asking every gateway it may have used what happened to its key.
    Returns None when no gateway knows the key (or none could be asked)."""
    payment = Payment.objects.get(id=payment_id)
    used = set(
        PaymentAttempt.objects.filter(payment_id=payment.id, kind="charge")
        .exclude(outcome=AttemptOutcome.CIRCUIT_OPEN)
        .values_list("gateway", flat=True)
    ) | {payment.gateway}
    for name in [n for n in gateway_names() if n in used]:
        try:
            record = gateway_get(name).lookup(idempotency_key=payment.idempotency_key)
        except GatewayError as exc:
            logger.info("lookup of %s on %s failed: %s", payment.id, name, exc)
            continue
        if record is None:
            continue
        if not charge_is_ours(record, payment):
            logger.warning(
                "charge %s under payment %s's key is not ours (merchant %r): left alone",
                record.charge_id,
                payment.id,
                record.merchant_id,
            )
            continue
        _attempt_log(
            payment.id,
            gateway=name,
            outcome=AttemptOutcome.LOOKUP,
            kind="lookup",
            detail=f"{record.status} {record.charge_id}",
        )
        if record.status == "succeeded" and not record.kept:
            payment_settle_refunded_at_gateway(payment_id=payment.id, gateway=name, record=record)
            return AttemptResult("refunded", detail="found refunded on lookup")
        if record.status == "succeeded":
            payment_settle_success(payment_id=payment.id, charge_id=record.charge_id, gateway=name)
            return AttemptResult("succeeded", detail="found on lookup")
        payment_settle_decline(payment_id=payment.id, code="declined")
        return AttemptResult("declined", detail="found on lookup")
    return None


# --- refunds ----------------------------------------------------------------------------------
def payment_refund_now_or_later(*, payment_id: object) -> None:
    """Refund at once (we are already talking to the gateway); on failure a task retries
    with backoff, and reconciliation catches whatever is left."""
    try:
        payment_refund(payment_id=payment_id)
    except (GatewayError, GatewayRejected) as exc:
        logger.warning("refund of %s deferred: %s", payment_id, exc)
        payment_refund_enqueue(payment_id=payment_id)


def payment_refund_enqueue(*, payment_id: object) -> None:
    try:
        current_app.signature(REFUND_TASK, args=[str(payment_id)]).apply_async()
    except Exception:  # noqa: BLE001 - reconciliation finds unrefunded charges
        logger.warning("could not enqueue refund of payment %s", payment_id, exc_info=True)


def payment_refund(*, payment_id: object) -> bool:
    """Give back a payment's charge whose order ended unpaid (own idempotency key) and end
    its order REFUNDED. A kept order (PAID) is never refunded here: see
    payment_refund_by_operator. Raises GatewayError when the gateway cannot be reached (the
    task retries)."""
    payment = Payment.objects.select_related("order").get(id=payment_id)
    if payment.status == PaymentStatus.REFUNDED or not payment.gateway_charge_id:
        return False
    if payment.status == PaymentStatus.SUCCEEDED and payment.order.status in (
        OrderStatus.PAID,
        OrderStatus.FULFILLED,
    ):
        return False  # the order is kept; nothing to give back
    refund_id = _payment_refund_at_gateway(payment, requested_by="shop")
    return _payment_mark_refunded(
        payment,
        refund_id=refund_id,
        origin=RefundOrigin.SHOP,
        reason=f"payment {payment.id} refunded: the reservation had ended",
    )


def payment_refund_by_operator(*, payment_id: object, operator: str, reason: str = "") -> str:
    """An operator gives a kept payment's money back (the admin's audited action): one
    refund per charge whatever happens (the refund's idempotency key is derived from the
    payment's), the order ends REFUNDED with its unit withheld, the shopper is told, and
    the attempt log records who did it. Returns "refunded", "already" or "not_refundable".
    Raises GatewayError/GatewayRejected when the gateway did not refund."""
    payment = Payment.objects.select_related("order").get(id=payment_id)
    if payment.status == PaymentStatus.REFUNDED:
        return "already"
    if payment.status != PaymentStatus.SUCCEEDED or not payment.gateway_charge_id:
        return "not_refundable"
    refund_id = _payment_refund_at_gateway(payment, requested_by=f"operator {operator}")
    moved = _payment_mark_refunded(
        payment,
        refund_id=refund_id,
        origin=RefundOrigin.OPERATOR,
        refunded_by=operator,
        reason=(f"refunded by {operator}" + (f": {reason}" if reason else ""))[:255],
    )
    return "refunded" if moved else "already"


def _payment_refund_at_gateway(payment: Payment, *, requested_by: str) -> str:
    """One refund call with the payment's refund key; logged whatever comes of it."""
    refund_key = payment.refund_idempotency_key or f"refund-{payment.idempotency_key}"
    Payment.objects.filter(id=payment.id, refund_idempotency_key="").update(
        refund_idempotency_key=refund_key
    )
    started = time.monotonic()
    try:
        refund = gateway_get(payment.gateway).refund(
            idempotency_key=refund_key, charge_id=payment.gateway_charge_id
        )
    except (GatewayError, GatewayRejected) as exc:
        _attempt_log(
            payment.id,
            gateway=payment.gateway,
            outcome=AttemptOutcome.REFUND_FAILED,
            kind="refund",
            detail=f"by {requested_by}: {exc}",
            started=started,
        )
        raise
    _attempt_log(
        payment.id,
        gateway=payment.gateway,
        outcome=AttemptOutcome.REFUNDED,
        kind="refund",
        detail=f"by {requested_by}: {refund.refund_id}",
        started=started,
    )
    return refund.refund_id


def _payment_mark_refunded(
    payment: Payment,
    *,
    refund_id: str = "",
    origin: str,
    reason: str,
    refunded_by: str = "",
    charge_id: str = "",
    gateway: str = "",
) -> bool:
    """Payment REFUNDED (once) and its order REFUNDED, the shopper told. A kept order's
    units stay withheld (see the order state machine); an ended order had none."""
    with transaction.atomic():
        changes = {"status": PaymentStatus.REFUNDED, "updated_at": Now()}
        changes.update(refund_origin=origin, refunded_by=refunded_by[:150])
        if refund_id:
            changes["gateway_refund_id"] = refund_id
        if charge_id:
            changes.update(gateway_charge_id=charge_id, gateway=gateway or payment.gateway)
        moved = (
            Payment.objects.filter(id=payment.id)
            .exclude(status=PaymentStatus.REFUNDED)
            .update(**changes)
        )
        if not moved:
            return False
        status = Order.objects.values_list("status", flat=True).get(id=payment.order_id)
        if status in (
            OrderStatus.PAID,
            OrderStatus.FULFILLED,
            OrderStatus.EXPIRED,
            OrderStatus.CANCELLED,
        ):
            try:
                order_transition(
                    order_id=payment.order_id,
                    from_status=status,
                    to_status=OrderStatus.REFUNDED,
                    reason=reason[:255],
                )
                order_notify_on_commit(order_id=payment.order_id, event="refunded", detail=reason)
            except TransitionLost:
                pass
    return True


def payment_settle_refunded_at_gateway(
    *, payment_id: object, gateway: str, record: ChargeRecord
) -> str:
    """A charge of ours that the gateway says was refunded or disputed, by anyone: the
    payment and its order end REFUNDED and the shopper is told. Returns the origin recorded
    ("" when there was nothing to do: already known, or a duplicate charge)."""
    payment = Payment.objects.get(id=payment_id)
    if payment.status == PaymentStatus.REFUNDED:
        return ""
    if payment.gateway_charge_id and (
        payment.gateway_charge_id != record.charge_id or payment.gateway != gateway
    ):
        return ""  # a duplicate charge of this payment; the kept one is elsewhere
    if record.disputed:
        origin, reason = RefundOrigin.DISPUTE, "the card holder disputed the charge"
    elif payment.refund_idempotency_key:
        origin, reason = RefundOrigin.SHOP, "refunded (the refund was confirmed by the gateway)"
    else:
        origin, reason = RefundOrigin.GATEWAY, "refunded at the payment provider"
    _attempt_log(
        payment.id,
        gateway=gateway,
        outcome=AttemptOutcome.REFUNDED,
        kind="lookup",
        detail=f"seen at the gateway: {reason} ({record.charge_id})",
    )
    moved = _payment_mark_refunded(
        payment, origin=origin, reason=reason, charge_id=record.charge_id, gateway=gateway
    )
    if moved:
        logger.warning("payment %s %s; order %s REFUNDED", payment.id, reason, payment.order_id)
    return origin if moved else ""


def charge_refund_stray(*, gateway: str, charge_id: str) -> None:
    """Refund a second charge of one of our payments (a duplicate, e.g. on the backup).
    Callers have proved the charge is ours; nothing else is ever refunded."""
    try:
        gateway_get(gateway).refund(
            idempotency_key=f"refund-stray-{charge_id}", charge_id=charge_id
        )
        logger.warning("refunded stray charge %s on %s", charge_id, gateway)
    except (GatewayError, GatewayRejected) as exc:
        logger.warning("stray charge %s on %s not refunded yet: %s", charge_id, gateway, exc)


# --- dead letters ------------------------------------------------------------------------------
def payment_dead_letter(*, payment_id: object, reason: str) -> None:
    try:
        with transaction.atomic():
            DeadLetter.objects.create(payment_id=payment_id, reason=reason[:255])
    except IntegrityError:
        pass  # already dead-lettered and not yet processed
    logger.warning("payment %s dead-lettered: %s", payment_id, reason)


def dead_letters_process(*, limit: int = 100) -> dict[str, int]:
    """For each open dead letter: settle it if a gateway knows its charge; else retry on the
    backup gateway (once, if configured and its circuit allows); else release the
    reservation and tell the shopper. Concurrent runs take different rows (SKIP LOCKED)."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        letters = list(
            DeadLetter.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("created_at")[:limit]
        )
        for letter in letters:
            resolution = _dead_letter_resolve(letter)
            DeadLetter.objects.filter(id=letter.id).update(
                processed_at=timezone.now(), resolution=resolution
            )
            counts[resolution] = counts.get(resolution, 0) + 1
    if counts:
        logger.info("dead letters processed: %s", counts)
    return counts


def _dead_letter_resolve(letter: DeadLetter) -> str:
    payment = Payment.objects.select_related("order").get(id=letter.payment_id)
    if payment.status != PaymentStatus.PENDING:
        return "already_settled"
    settled = payment_settle_from_gateway(payment_id=payment.id)
    if settled is not None:
        return f"found_{settled.outcome}"
    backup = settings.PAYMENT_BACKUP_GATEWAY
    tried_backup = PaymentAttempt.objects.filter(payment_id=payment.id, gateway=backup).exists()
    if (
        backup
        and backup in (payment.gateway_tokens or {})
        and not tried_backup
        and payment.order.status == OrderStatus.RESERVED
        and breaker_allow(backup).allows_call
    ):
        Payment.objects.filter(id=payment.id, status=PaymentStatus.PENDING).update(
            attempts=0, gateway=backup, updated_at=Now()
        )
        transaction.on_commit(lambda: payment_enqueue(payment_id=payment.id, gateway=backup))
        return "retry_on_backup"
    _payment_fail(
        payment,
        code="gateway_unavailable",
        reason="the payment service did not answer",
        release=True,
    )
    return "released"


# --- reconciliation ----------------------------------------------------------------------------
@dataclass
class ReconcileReport:
    checked_charges: int = 0
    checked_pending: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    # Charges reconciliation saw and left alone: another merchant's (a shared provider
    # account), or carrying our merchant id with a key no payment of ours has.
    foreign_charges: int = 0
    unmatched_charges: list[str] = field(default_factory=list)
    skipped: bool = False

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1


def payments_reconcile() -> ReconcileReport:
    """The gateway's ledger against ours. One run at a time (Redis lock, token release).
    1. Every charge created, refunded or disputed within the window (all pages), acting
       only on charges provably ours (charge_is_ours): a success whose payment we lost
       settles it (PAID, or refunded if the order ended); a duplicate is refunded; a refund
       or dispute made at the gateway, by anyone, ends the payment and order REFUNDED.
       Anything else is never refunded: it is counted and logged.
    2. PENDING payments untouched for a while: ask the gateway by key and settle; if it
       never saw the key, re-enqueue the charge (or give up once the reservation is over).
    3. Successful payments whose order ended unpaid: refund."""
    report = ReconcileReport()
    with job_lock("payments-reconcile", seconds=300) as got:
        if not got:
            report.skipped = True
            return report
        _ledger_reconcile(report)
        _pending_reconcile(report)
        _unrefunded_reconcile(report)
    if report.actions:
        logger.warning("payment reconciliation corrected: %s", report.actions)
    if report.unmatched_charges:
        logger.warning(
            "payment reconciliation: %s charge(s) carry our merchant id %r but no payment of "
            "ours; left alone for an operator: %s",
            len(report.unmatched_charges),
            settings.PAYMENT_MERCHANT_ID,
            report.unmatched_charges[:20],
        )
    if report.foreign_charges:
        logger.info(
            "payment reconciliation: %s other merchants' charge(s) left alone",
            report.foreign_charges,
        )
    return report


def _ledger_reconcile(report: ReconcileReport) -> None:
    since = (
        timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_WINDOW_SECONDS)
    ).isoformat()
    for name in gateway_names():
        cursor = ""
        while True:
            try:
                page = gateway_get(name).charges_changed(since=since, cursor=cursor)
            except GatewayError as exc:
                logger.warning("reconcile: %s unreachable: %s", name, exc)
                break
            _charges_reconcile(report, name, page.charges)
            if not page.next_cursor:
                break
            cursor = page.next_cursor


def _charges_reconcile(report: ReconcileReport, name: str, charges: list[ChargeRecord]) -> None:
    mine = [c for c in charges if c.merchant_id == settings.PAYMENT_MERCHANT_ID]
    report.checked_charges += len(charges)
    report.foreign_charges += len(charges) - len(mine)
    by_key = {
        p.idempotency_key: p
        for p in Payment.objects.filter(idempotency_key__in=[c.idempotency_key for c in mine])
    }
    for charge in mine:
        if charge.status != "succeeded":
            continue
        payment = by_key.get(charge.idempotency_key)
        if not charge_is_ours(charge, payment):
            report.unmatched_charges.append(f"{name}:{charge.charge_id}")
            continue
        if not charge.kept:
            if payment.status == PaymentStatus.REFUNDED:
                continue  # known (most often our own refund)
            origin = payment_settle_refunded_at_gateway(
                payment_id=payment.id, gateway=name, record=charge
            )
            if origin:
                report.count(f"refunded_at_gateway_{origin}")
            continue
        if payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            outcome = payment_settle_success(
                payment_id=payment.id, charge_id=charge.charge_id, gateway=name
            )
            report.count(f"settled_{outcome}")
        elif payment.gateway_charge_id != charge.charge_id or payment.gateway != name:
            charge_refund_stray(gateway=name, charge_id=charge.charge_id)
            report.count("refunded_duplicate_charge")
        elif payment.status == PaymentStatus.REFUNDED:
            charge_refund_stray(gateway=name, charge_id=charge.charge_id)
            report.count("refunded_again")


def _pending_reconcile(report: ReconcileReport) -> None:
    stale = Now() - timedelta(seconds=settings.PAYMENT_PENDING_STALE_SECONDS)
    pending = Payment.objects.select_related("order").filter(
        status=PaymentStatus.PENDING, updated_at__lt=stale
    )[:1000]
    for payment in pending:
        report.checked_pending += 1
        settled = payment_settle_from_gateway(payment_id=payment.id)
        if settled is not None:
            report.count(f"pending_{settled.outcome}")
            continue
        if payment.order.status != OrderStatus.RESERVED or _order_past_bound(payment.order):
            if _payment_fail(payment, code="abandoned", reason="no charge reached the gateway"):
                report.count("pending_failed")
            continue
        Payment.objects.filter(id=payment.id).update(updated_at=Now())
        payment_enqueue(payment_id=payment.id)
        report.count("pending_requeued")


def _unrefunded_reconcile(report: ReconcileReport) -> None:
    stuck = Payment.objects.filter(
        status=PaymentStatus.SUCCEEDED,
        order__status__in=[OrderStatus.EXPIRED, OrderStatus.CANCELLED],
    ).values_list("id", flat=True)[:1000]
    for payment_id in stuck:
        try:
            payment_refund(payment_id=payment_id)
            report.count("refunded_after_expiry")
        except (GatewayError, GatewayRejected) as exc:
            logger.warning("reconcile: refund of %s failed: %s", payment_id, exc)
