"""Alembic's environment for the store's migrations.

The store runs them itself when it opens (:func:`crowdwatch.store.migrations.upgrade`), on its
own connection, inside the transaction that holds the store's write lock; users never need an
``alembic.ini``. For a developer, ``alembic -x url=sqlite:///path.db upgrade head`` works too
(with ``script_location`` pointing at this folder).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the store's URL: alembic -x url=sqlite:///path.db ...")
    with create_engine(url).connect() as own:
        context.configure(connection=own, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()


# Alembic runs this file inside its environment; imported anywhere else, it does nothing.
if hasattr(context, "config"):
    _run()
