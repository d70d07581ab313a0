"""Alembic migrations: the only place the schema changes.

Shipped as a package with aniface (`pip install .` users upgrade their databases too) and driven by
`bot.storage.migrate` (`aniface db ...`, or opening a `bot.storage.db.Database`), which needs no
alembic.ini. A new revision, after changing bot/storage/models.py:

    aniface db upgrade --database-url sqlite:////tmp/head.sqlite3      # a database at the current head
    python -c "from alembic import command; from bot.storage.migrate import alembic_config; \
        command.revision(alembic_config('sqlite:////tmp/head.sqlite3'), 'what changed', \
                         autogenerate=True, rev_id='0002')"

then read and fix what it wrote (autogenerate misses renames, server defaults and data moves; check
it on PostgreSQL too). Revisions are `versions/NNNN_what.py` with `revision = "NNNN"`, and
tests/test_storage.py checks that the models and the migrations agree.
"""
