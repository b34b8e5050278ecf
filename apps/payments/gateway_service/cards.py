"""What a processor checks on a card before any charge, and the simulated gateway's test cards.

Test cards: 4242424242424242 succeeds; 4000000000000002 is declined; 4000000000009995 hangs
past the client's timeout on its first two attempts for a key, then succeeds;
4000000000000119 answers 500 every time; 4000000000003220 succeeds after --slow-seconds
(20 s by default); 4000000000000127 is declined for an incorrect CVC. Other numbers passing
the Luhn check succeed; others are declined.
"""

from __future__ import annotations

from datetime import date

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_TIMEOUT_TWICE = "4000000000009995"
CARD_ALWAYS_5XX = "4000000000000119"
CARD_SLOW = "4000000000003220"
CARD_INCORRECT_CVC = "4000000000000127"
_ASCII_DIGITS = frozenset("0123456789")


def ascii_digits(value: str) -> bool:
    return bool(value) and set(value) <= _ASCII_DIGITS


def luhn_ok(number: str) -> bool:
    if not ascii_digits(number) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2] or 0) <= 55 or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "discover"
    return "unknown"


def _int(value) -> int | None:
    text = str(value if value is not None else "").strip()
    return int(text) if ascii_digits(text) and len(text) <= 4 else None


def card_check(card: dict, today: date) -> tuple[str | None, dict]:
    """(error code or None, the card's normalised fields). Absent expiry or CVC is not
    checked (a card on file); present ones must be right."""
    number = str(card.get("number") or "").replace(" ", "")
    if not luhn_ok(number):
        return "incorrect_number", {}
    fields = {"number": number, "brand": card_brand(number), "exp_month": None, "exp_year": None}
    if card.get("exp_month") is not None or card.get("exp_year") is not None:
        month, year = _int(card.get("exp_month")), _int(card.get("exp_year"))
        if month is None or not 1 <= month <= 12:
            return "invalid_expiry_month", {}
        if year is not None and year < 100:
            year += 2000
        if year is None or year > today.year + 20:
            return "invalid_expiry_year", {}
        if (year, month) < (today.year, today.month):
            return "expired_card", {}
        fields.update(exp_month=month, exp_year=year)
    cvc = card.get("cvc")
    if cvc not in (None, ""):
        cvc = str(cvc)
        if not ascii_digits(cvc) or len(cvc) != (4 if fields["brand"] == "amex" else 3):
            return "invalid_cvc", {}
    return None, fields
