"""A pytest plugin (``-p apps.core.testing.schema_audit``; scripts/schema_audit runs it) that
records every /api/ answer the test suite's own requests get and, at the end, lists those whose
status or content type /api/schema/ does not document for the operation. The behaviour tests
reach states schemathesis does not (sold out, a second join after buying, a paid order).
``make test`` loads it and prints what it finds; with SCHEMA_AUDIT_STRICT=1 (scripts/schema_audit)
a finding fails the run. A 500 is left to the tests that provoke it: it is never documented."""

from __future__ import annotations

import os
import re
from collections import defaultdict

import pytest

_seen: dict[tuple[str, str, int], set[str]] = defaultdict(set)


def _record(request, response) -> None:
    path = request.path_info
    if path.startswith("/api/") and not path.startswith(("/api/schema", "/api/docs")):
        content_type = response.get("Content-Type", "").split(";")[0]
        _seen[(request.method.lower(), path, response.status_code)].add(content_type)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    from django.core.handlers.base import BaseHandler

    original = BaseHandler.get_response

    def get_response(self, request):
        response = original(self, request)
        _record(request, response)
        return response

    BaseHandler.get_response = get_response


def _operations() -> list[tuple[re.Pattern, str, dict]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$")
        found.extend((pattern, method, operation) for method, operation in item.items())
    return found


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """Under pytest-xdist the answers are seen by the workers: each sends its own here."""
    for method, path, status, content_types in node.workeroutput.get("schema_audit", []):
        _seen[(method, path, status)].update(content_types)


def pytest_sessionfinish(session, exitstatus):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller audits everything at once
        workeroutput["schema_audit"] = [[*key, sorted(cts)] for key, cts in _seen.items()]
        return
    if not _seen:
        return
    operations = _operations()
    undocumented = []
    for (method, path, status), content_types in sorted(_seen.items()):
        matches = [op for pattern, m, op in operations if m == method and pattern.match(path)]
        if not matches or status in (405, 500):
            continue  # not an operation of the schema; a wrong method; a provoked crash
        responses = matches[0]["responses"]
        if str(status) not in responses:
            undocumented.append(f"{method.upper()} {path} -> {status}")
        elif status != 204 and content_types - {"application/json"}:
            undocumented.append(f"{method.upper()} {path} -> {status} as {content_types}")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.write_sep("=", f"schema audit: {len(_seen)} distinct /api/ answers")
    for line in undocumented:
        reporter.write_line(f"UNDOCUMENTED {line}")
    if undocumented and os.environ.get("SCHEMA_AUDIT_STRICT") == "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
