import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.inventory.models import Unit
from apps.inventory.services import units_left
from apps.orders.services import order_reserve
from apps.sales.models import FlashSale, SaleStatus
from apps.sales.selectors import sale_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    return client


def sale_form(sale, **changes):
    fields = {
        "product": sale.product_id,
        "title": sale.title,
        "price": "10.00",
        "currency": "USD",
        "total_inventory": sale.total_inventory,
        "max_per_user": sale.max_per_user,
        "start_time": sale.start_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "end_time": sale.end_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "status": sale.status,
        "reservation_seconds": 300,
        "pre_queue_minutes": 15,
        "admission_rate": 1000,
        "max_active_shoppers": 5000,
        "admission_factor": "2",
        "admission_token_seconds": 120,
        "pow_difficulty": 16,
        "bot_policy": "back_of_queue",
        "bot_threshold": 50,
    }
    fields.update(changes)
    return fields


def test_admin_list_shows_sold_reserved_remaining(admin_client, make_sale, shopper):
    sale = make_sale(inventory=4)
    order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=shopper.id, quantity=1, idempotency_key="k"
    )
    page = admin_client.get("/admin/sales/flashsale/")
    assert page.status_code == 200
    row = next(r for r in page.context["cl"].result_list if r.id == sale.id)
    assert (row.units_sold, row.units_reserved, row.units_free) == (0, 1, 3)


def test_admin_refuses_end_before_start(admin_client, make_sale):
    sale = make_sale()
    form = sale_form(
        sale, end_time=(sale.start_time - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    )
    page = admin_client.post(f"/admin/sales/flashsale/{sale.id}/change/", form)
    assert page.status_code == 200
    assert "must end after it starts" in page.content.decode()


@pytest.mark.parametrize("total", [0, 1_000_001])
def test_admin_refuses_inventory_out_of_range(admin_client, make_sale, total):
    sale = make_sale()
    page = admin_client.post(
        f"/admin/sales/flashsale/{sale.id}/change/", sale_form(sale, total_inventory=total)
    )
    assert page.status_code == 200
    assert FlashSale.objects.get(id=sale.id).total_inventory == 10


def test_admin_refuses_inventory_below_what_is_held(admin_client, make_sale, make_shopper):
    sale = make_sale(inventory=3)
    for n in range(2):
        order_reserve(
            sale=sale_snapshot(str(sale.id)),
            user_id=make_shopper().id,
            quantity=1,
            idempotency_key=f"k{n}",
        )
    page = admin_client.post(
        f"/admin/sales/flashsale/{sale.id}/change/", sale_form(sale, total_inventory=1)
    )
    assert page.status_code == 200
    # The sale is live: it can only grow (below what is held is refused either way).
    assert "can only grow" in page.content.decode()
    assert FlashSale.objects.get(id=sale.id).total_inventory == 3


def test_admin_raising_inventory_adds_units(admin_client, make_sale):
    sale = make_sale(inventory=3)
    page = admin_client.post(
        f"/admin/sales/flashsale/{sale.id}/change/", sale_form(sale, total_inventory=8)
    )
    assert page.status_code == 302, page.content.decode()[:2000]
    assert Unit.objects.filter(sale=sale).count() == 8


def test_admin_start_now_and_cancel_actions(admin_client, make_sale):
    sale = make_sale(starts_in=timedelta(hours=1))
    admin_client.post(
        "/admin/sales/flashsale/", {"action": "start_now", "_selected_action": [sale.id]}
    )
    sale.refresh_from_db()
    assert sale.status == SaleStatus.ACTIVE and sale.start_time <= timezone.now()
    admin_client.post(
        "/admin/sales/flashsale/", {"action": "cancel", "_selected_action": [sale.id]}
    )
    sale.refresh_from_db()
    assert sale.status == SaleStatus.CANCELLED


def test_create_flash_sale_prints_the_id_last(django_user_model):
    out = io.StringIO()
    call_command(
        "create_flash_sale",
        "--product",
        "Kettle",
        "--inventory",
        "25",
        "--starts-in",
        "45s",
        "--duration",
        "1h",
        "--max-per-user",
        "2",
        stdout=out,
    )
    sale_id = out.getvalue().strip().splitlines()[-1]
    sale = FlashSale.objects.get(id=uuid.UUID(sale_id))
    assert (sale.total_inventory, sale.max_per_user) == (25, 2)
    assert Unit.objects.filter(sale=sale).count() == 25
    assert timedelta(seconds=40) < sale.start_time - timezone.now() < timedelta(seconds=50)


@pytest.mark.parametrize("args", [["--inventory", "0"], ["--starts-in", "soon"]])
def test_create_flash_sale_refuses_bad_input(args):
    base = {"--product": "Kettle", "--inventory": "5"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    with pytest.raises(CommandError):
        call_command(
            "create_flash_sale", *[x for kv in base.items() for x in kv], stdout=io.StringIO()
        )


def test_audit_sale_reports_clean_and_broken(make_sale, shopper, redis_client):
    sale = make_sale(inventory=3)
    order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=shopper.id, quantity=1, idempotency_key="k"
    )
    out = io.StringIO()
    call_command("audit_sale", str(sale.id), stdout=out)
    assert "CLEAN" in out.getvalue()
    # Break an invariant: a unit held in PostgreSQL shows as free in Redis.
    from apps.inventory.keys import sale_keys

    held = Unit.objects.get(sale=sale, order__isnull=False).number
    redis_client.sadd(sale_keys(sale.id).free, held)
    with pytest.raises(CommandError):
        call_command("audit_sale", str(sale.id), stdout=io.StringIO())


def test_seed_demo_is_repeatable(django_user_model):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert FlashSale.objects.count() == 1
    assert django_user_model.objects.filter(username__in=["alice", "admin"]).count() == 2
    sale = FlashSale.objects.get()
    assert units_left(sale_id=sale.id) in (None, sale.total_inventory)


def test_create_shoppers_writes_credentials(tmp_path, django_user_model):
    target = tmp_path / "shoppers.csv"
    call_command(
        "create_shoppers", "5", "--prefix", "lt", "--out", str(target), stderr=io.StringIO()
    )
    lines = target.read_text().splitlines()
    assert lines[0] == "username,password,token" and len(lines) == 6
    assert django_user_model.objects.filter(username__startswith="lt").count() == 5
