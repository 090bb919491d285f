"""Shared test setup: never touch the network, never write outside tmp dirs."""

import os
import uuid

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")



@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    The server comes from CHATFORGE_TEST_POSTGRES (`export CHATFORGE_TEST_POSTGRES=$(bash
    .ci/postgres.sh)` starts one with Debian's packages); without it the test skips and says
    why, except in CI (CHATFORGE_POSTGRES_REQUIRED=1), where it fails."""
    base = os.environ.get("CHATFORGE_TEST_POSTGRES")
    if not base:
        reason = "no PostgreSQL server: set CHATFORGE_TEST_POSTGRES (bash .ci/postgres.sh starts one)"
        if os.environ.get("CHATFORGE_POSTGRES_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    import sqlalchemy as sa

    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"cf_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
