# The degraded-mode mark moves to orders (orders 0002 takes the table): drop it from
# protection's state only.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("protection", "0001_initial"),
        ("orders", "0002_degradedsale"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="DegradedSale")],
            database_operations=[],
        ),
    ]
