#!/usr/bin/env python3
"""Create the application's PostgreSQL database if it does not exist yet."""

import os
import sys
from urllib.parse import urlparse

import psycopg

url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flashsale"))
name = url.path.lstrip("/") or "flashsale"
admin_dsn = url._replace(path="/postgres").geturl()
try:
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
except psycopg.Error as exc:
    print(f"✗ cannot prepare database {name}: {exc}", file=sys.stderr)
    sys.exit(1)
