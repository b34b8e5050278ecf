"""Logs, metrics and traces: JSON log lines carrying the request id, Prometheus metrics from
every process of a node, OpenTelemetry traces when an exporter is configured."""

import os

from .env import env

# OBSERVABILITY=0 drops the metrics/request-id middleware: only scripts/bench uses it, to
# measure what observability costs on the hot path.
OBSERVABILITY = env.bool("OBSERVABILITY", default=True)

# LOG_FORMAT=json (default: one JSON object a line, for a log shipper) or plain (a terminal).
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.request_context.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # SQL with its parameters never reaches a log, whatever LOG_LEVEL says: parameters can
        # hold a shopper's email or a payment reference.
        "django.db.backends": {"level": "INFO"},
    },
}

# Prometheus multiprocess mode: every process of the node writes its figures into this folder
# and /metrics adds them up. The process manager empties it when the node starts. Unset, each
# process counts for itself (tests, one-off commands).
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# Who may scrape /metrics: addresses or networks (the Prometheus server, the node itself).
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# The sale-events feed (/ops/sales/<id>/events, Server-Sent Events): staff sessions, or an
# external system presenting this token as "Authorization: Bearer <token>".
OPS_FEED_TOKEN = env("OPS_FEED_TOKEN", default="")
# OpenTelemetry traces: off unless an OTLP/HTTP endpoint is given (e.g. a local collector's
# http://127.0.0.1:4318/v1/traces).
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="flashsale")
