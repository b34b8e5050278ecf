#!/usr/bin/env bash
# The issue's scenario at full size: 1,000 reservations with a mix of pay (40 %), decline
# (20 %), timeout-then-pay (10 %) and abandon (30 %), a real Celery worker and a real gateway;
# after the periodic jobs, `manage.py audit_sale` must be clean. About 3-4 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PAYMENT_MIX_SIZE="${PAYMENT_MIX_SIZE:-1000}" TEST_RUN_NAME="${TEST_RUN_NAME:-paymix}" \
  .venv/bin/pytest -q -p no:cacheprovider --durations=1 \
  "apps/payments/tests/test_worker.py::test_mixed_reservations_audit_clean" "$@"
