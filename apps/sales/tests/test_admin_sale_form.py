"""The sale admin as an operator meets it: the add form (start plus duration, no database
internals, plain-word errors), and a live sale whose terms are locked and whose inventory only
grows, through the service that adds unit rows and Redis units together."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.redis import get_redis
from apps.inventory.audit import sale_audit
from apps.inventory.keys import sale_keys
from apps.inventory.models import Unit
from apps.inventory.services import units_left
from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.sales.models import FlashSale
from apps.sales.selectors import sale_snapshot
from apps.sales.services import sale_inventory_grow

from .test_admin_and_commands import admin_client, sale_form  # noqa: F401

pytestmark = pytest.mark.django_db


def _reserve(sale, user, key="k"):
    return order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=user.id, quantity=1, idempotency_key=key
    )


def test_add_form_takes_a_start_and_a_duration_and_shows_no_database_internals(
    admin_client,  # noqa: F811
    make_sale,
):
    product = make_sale().product
    page = admin_client.get("/admin/sales/flashsale/add/")
    html = page.content.decode()
    assert "DatabaseDefault" not in html and "Created at" not in html
    assert 'type="datetime-local"' in html and 'name="duration"' in html
    assert "data-sale-preview" in html  # the countdown preview

    start = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    form = sale_form(
        FlashSale(product=product, start_time=start, end_time=start, total_inventory=5),
        title="Duration drop",
        start_time=start.strftime("%Y-%m-%dT%H:%M"),
        end_time="",
        duration="45m",
    )
    form.pop("status")
    page = admin_client.post("/admin/sales/flashsale/add/", form)
    assert page.status_code == 302, page.content.decode()[:3000]
    sale = FlashSale.objects.get(title="Duration drop")
    assert (sale.start_time, sale.end_time) == (start, start + timedelta(minutes=45))
    assert Unit.objects.filter(sale=sale).count() == 5


def test_add_form_speaks_plain_words(admin_client, make_sale):  # noqa: F811
    product = make_sale().product
    start = timezone.now() + timedelta(days=1)
    form = sale_form(
        FlashSale(product=product, start_time=start, end_time=start, total_inventory=0),
        start_time=start.strftime("%Y-%m-%dT%H:%M"),
        end_time="",
        duration="",
        price="-3",
    )
    form.pop("status")
    html = admin_client.post("/admin/sales/flashsale/add/", form).content.decode()
    assert "A sale needs at least 1 unit." in html
    assert "The price cannot be negative." in html
    assert "Give the sale a duration or an end time." in html
    assert "Ensure this value" not in html


def test_admin_is_branded_and_the_sale_list_has_room(admin_client, make_sale):  # noqa: F811
    make_sale()
    html = admin_client.get("/admin/sales/flashsale/").content.decode()
    assert "Drop · shop admin" in html and "Django administration" not in html
    assert 'id="nav-sidebar"' not in html  # the sidebar took the list's width at 1440 px
    assert "sale-phase-live" in html


def test_live_sale_locks_its_terms(admin_client, make_sale):  # noqa: F811
    sale = make_sale(price="10.00")  # started a second ago
    html = admin_client.get(f"/admin/sales/flashsale/{sale.id}/change/").content.decode()
    assert 'name="price"' not in html and 'name="start_time"' not in html
    assert 'name="total_inventory"' in html and "can only grow" in html

    later = sale.start_time + timedelta(hours=5)
    page = admin_client.post(
        f"/admin/sales/flashsale/{sale.id}/change/",
        sale_form(
            sale,
            price="1.00",
            start_time=later.strftime("%Y-%m-%dT%H:%M"),
            max_per_user=9,
            title="Renamed",
        ),
    )
    assert page.status_code == 302, page.content.decode()[:3000]
    sale.refresh_from_db()
    assert (str(sale.price), sale.max_per_user, sale.title) == ("10.00", 1, "Renamed")
    assert sale.start_time < timezone.now()


def test_scheduled_sale_stays_editable(admin_client, make_sale):  # noqa: F811
    sale = make_sale(starts_in=timedelta(hours=2), pre_queue_minutes=15)
    page = admin_client.post(
        f"/admin/sales/flashsale/{sale.id}/change/", sale_form(sale, price="12.50")
    )
    assert page.status_code == 302, page.content.decode()[:3000]
    sale.refresh_from_db()
    assert str(sale.price) == "12.50"


def test_live_sale_inventory_grows_into_both_stores_and_never_oversells(
    admin_client,  # noqa: F811
    make_sale,
    make_shopper,
    django_capture_on_commit_callbacks,
):
    sale = make_sale(inventory=2)
    for n in range(2):
        _reserve(sale, make_shopper(), key=f"a{n}")
    assert units_left(sale_id=sale.id) == 0

    # Shrinking a live sale is refused, and changes nothing.
    page = admin_client.post(
        f"/admin/sales/flashsale/{sale.id}/change/", sale_form(sale, total_inventory=1)
    )
    assert page.status_code == 200 and "can only grow" in page.content.decode()
    with pytest.raises(ApplicationError):
        sale_inventory_grow(sale_id=sale.id, total_inventory=1)

    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(
            f"/admin/sales/flashsale/{sale.id}/change/", sale_form(sale, total_inventory=4)
        )
    assert page.status_code == 302, page.content.decode()[:3000]
    assert FlashSale.objects.get(id=sale.id).total_inventory == 4
    assert Unit.objects.filter(sale=sale).count() == 4
    free = {int(n) for n in get_redis().smembers(sale_keys(sale.id).free)}
    assert free == {2, 3}
    assert sale_snapshot(str(sale.id)).total_inventory == 4

    outcomes = []
    for n in range(3):
        try:
            _reserve(sale, make_shopper(), key=f"b{n}")
            outcomes.append("reserved")
        except ApplicationError as error:
            outcomes.append(error.code)
    assert outcomes == ["reserved", "reserved", "sold_out"]
    assert Order.objects.filter(sale=sale).count() == 4
    assert sale_audit(sale_id=sale.id).clean

    # The service alone (no admin re-publish after it) puts the new units in Redis too.
    with django_capture_on_commit_callbacks(execute=True):
        sale_inventory_grow(sale_id=sale.id, total_inventory=5)
    assert {int(n) for n in get_redis().smembers(sale_keys(sale.id).free)} == {4}
    _reserve(sale, make_shopper(), key="c")
    assert Unit.objects.filter(sale=sale, order__isnull=False).count() == 5
    assert sale_audit(sale_id=sale.id).clean
