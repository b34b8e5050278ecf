"""The guard's statement takes each unit by its number: its cost does not grow with the
sale's stock (the partial index of free units would make it scan every free unit of the sale
once per unit taken)."""

import uuid

import pytest
from django.db import connection

from apps.inventory.services import UNITS_TAKEN_SQL, UnitsClaim, units_claims_params

pytestmark = pytest.mark.django_db


def test_units_are_looked_up_by_number_not_scanned_among_the_free_ones(make_sale, shopper):
    # As in a real drop: the statistics predate the sale's stock, which arrived just before.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inventory_unit")
    sale = make_sale(inventory=3000)
    with connection.cursor() as cursor:
        params = units_claims_params(
            [
                UnitsClaim(
                    order_id=str(uuid.uuid4()),
                    sale_id=str(sale.id),
                    user_id=shopper.id,
                    quantity=2,
                    units=[7, 2999],
                    max_units=2,
                )
            ]
        )
        cursor.execute(
            f"EXPLAIN (COSTS OFF) WITH {UNITS_TAKEN_SQL} SELECT count(*) FROM units_taken",
            params,
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "unit_free_idx" not in plan, plan
    assert "unit_number_per_sale" in plan, plan
