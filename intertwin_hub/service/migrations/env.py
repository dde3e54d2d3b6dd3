"""Alembic's environment for the service's history database: run by ``db.open_store`` with the
connection in ``config.attributes["connection"]`` (https://alembic.sqlalchemy.org/en/latest/
cookbook.html#connection-sharing), or from the URL in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from intertwin_hub.service.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as c:
        context.configure(connection=c, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
