"""The alert rules pass promtool's own unit tests, and every metric they and the dashboard
name is one the app exports (so a renamed metric cannot silence an alert)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMTOOL = shutil.which("promtool")
_NAME = re.compile(r"\b((?:flashsale|http_server)_[a-z_]+)")
_SUFFIXES = ("_bucket", "_count", "_sum")


def test_alert_rules_pass_promtool():
    assert PROMTOOL, "promtool is installed by .ci/install-system-packages (Debian prometheus)"
    for args in (
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
        ["check", "config", "prometheus.yml"],
    ):
        result = subprocess.run(
            [PROMTOOL, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_alerts_and_dashboard_name_only_exported_metrics(client, make_sale):
    make_sale()  # a live sale, so the per-sale families have samples
    exposition = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    exported = set(re.findall(r"^# TYPE (\S+)", exposition, re.MULTILINE))
    exported |= {name + "_total" for name in exported}  # counters: family name without _total
    wanted = set(_NAME.findall((DEPLOY / "prometheus" / "alerts.yml").read_text()))
    dashboard = json.loads((DEPLOY / "grafana" / "flashsale-live.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            wanted |= set(_NAME.findall(target["expr"]))
    missing = {name for name in wanted if _family(name) not in exported}
    assert not missing, f"named in alerts or dashboard but not exported: {sorted(missing)}"
