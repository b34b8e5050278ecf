# The degraded-mode mark moves from protection to orders, which writes it: the state moves
# here (protection 0002 drops it from its own state) and the table is renamed to match.

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("protection", "0001_initial"),
        ("sales", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DegradedSale",
                    fields=[
                        (
                            "sale",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                serialize=False,
                                to="sales.flashsale",
                            ),
                        ),
                        ("generation", models.BigIntegerField(default=1)),
                        (
                            "since",
                            models.DateTimeField(
                                db_default=django.db.models.functions.datetime.Now()
                            ),
                        ),
                    ],
                    options={"db_table": "protection_degradedsale"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="degradedsale", table=None),
    ]
