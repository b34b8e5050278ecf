"""Card numbers out of the database: brand, last four digits and gateway tokens instead of
`payment_method`. Existing rows keep only their brand and last four digits; the number is
blanked, then its column dropped."""

from django.db import migrations, models


def _brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    head2 = int(number[:2]) if number[:2].isdigit() else 0
    head4 = int(number[:4]) if number[:4].isdigit() else 0
    if 51 <= head2 <= 55 or 2221 <= head4 <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or number[:3] in {str(n) for n in range(644, 650)}:
        return "discover"
    return "unknown"


def mask_card_numbers(apps, schema_editor):
    Payment = apps.get_model("payments", "Payment")
    for payment in Payment.objects.exclude(payment_method="").only("id", "payment_method"):
        number = payment.payment_method
        digits = number if number.isascii() and number.isdigit() else ""
        Payment.objects.filter(id=payment.id).update(
            card_brand=_brand(digits) if digits else "",
            card_last4=number[-4:],
            payment_method="",
        )


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_refund_origin")]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="card_brand",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="payment",
            name="gateway_tokens",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(mask_card_numbers, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(model_name="payment", name="payment_method"),
    ]
