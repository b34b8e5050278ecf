import csv
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand

from apps.core.tokens import shopper_token_issue


class Command(BaseCommand):
    help = "Create N shopper accounts for load tests; writes username,password,token as CSV."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("--prefix", default="shopper")
        parser.add_argument("--password", default="shop-demo-pass")
        parser.add_argument("--out", default="-", help="CSV file (default: standard output)")

    def handle(self, *args, count, prefix, password, out, **opts):
        User = get_user_model()
        hashed = make_password(password)
        names = [f"{prefix}{i:06d}" for i in range(1, count + 1)]
        existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        User.objects.bulk_create(
            [User(username=n, password=hashed) for n in names if n not in existing],
            batch_size=2000,
        )
        ids = dict(User.objects.filter(username__in=names).values_list("username", "id"))
        stream = sys.stdout if out == "-" else open(out, "w", newline="")  # noqa: SIM115
        try:
            writer = csv.writer(stream)
            writer.writerow(["username", "password", "token"])
            for name in names:
                token, _ = shopper_token_issue(user_id=ids[name], username=name)
                writer.writerow([name, password, token])
        finally:
            if stream is not sys.stdout:
                stream.close()
        self.stderr.write(f"{len(names)} shoppers ready ({len(names) - len(existing)} new).")
