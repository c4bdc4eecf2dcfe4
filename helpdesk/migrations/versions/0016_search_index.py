"""Search: accent-insensitive full-text indexes over message text, customer names and channel ids

SQLite: contentless FTS5 tables (unicode61 tokenizer, diacritics removed; "đ" is folded to "d" by the
triggers, which the tokenizer does not do) kept in step with their tables by triggers, so every write
path (ORM or Core inserts alike) indexes without knowing about search. A later migration that
recreates one of these tables in batch mode drops its triggers with it and must create them again.

PostgreSQL: the unaccent extension, an immutable folding function over it (lower case, no
diacritics, "đ" -> "d": the same folding as ``nlu.normalization.fold`` for Vietnamese) and GIN
indexes on the 'simple' text-search vector of the folded text. They are expression indexes, so there
is no column to backfill; on a messages table that is already large, the index is left to
``helpdesk.search.indexes.build_missing`` (run at start-up), which builds it CONCURRENTLY so that
writes are never held for the length of the build.

Revision ID: 0016_search
Revises: 0015_web_push
Create Date: 2026-12-05 10:55:00.000000
"""
from alembic import op


revision = '0016_search'
down_revision = '0015_web_push'
branch_labels = None
depends_on = None

#: above this many messages (PostgreSQL's estimate) the index is built CONCURRENTLY after start-up
#: instead of inside the migration's transaction, where the build would block every write to messages
LARGE_TABLE_ROWS = 200_000

_FOLD_SQLITE = "replace(replace({value}, 'đ', 'd'), 'Đ', 'D')"

_SQLITE_TABLES = {
    # fts table: (source table, key column, indexed expression over {row})
    "messages_fts": ("messages", "id", "{row}.text"),
    "customers_fts": ("customers", "id", "coalesce({row}.name, '')"),
    "identities_fts": ("channel_identities", "id",
                       "coalesce({row}.display_name, '') || ' ' || {row}.external_id"),
}

#: the same as helpdesk.search.indexes.SEARCH_INDEXES (a migration keeps its own copy: it must not change)
PG_INDEXES = {
    "ix_messages_search": ("messages", "text"),
    "ix_customers_search": ("customers", "coalesce(name, '')"),
    "ix_channel_identities_search": ("channel_identities", "coalesce(display_name, '') || ' ' || external_id"),
}


def _sqlite_upgrade() -> None:
    for fts, (source, key, expression) in _SQLITE_TABLES.items():
        new = _FOLD_SQLITE.format(value=expression.format(row="new"))
        old = _FOLD_SQLITE.format(value=expression.format(row="old"))
        # prefix indexes of 1 and 2 letters: the word being typed ("bao h") is matched as a prefix,
        # which without them merges the lists of every word that starts so
        op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5(body, content='', "
                   f"tokenize='unicode61 remove_diacritics 2', prefix='1 2')")
        op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {source} BEGIN "
                   f"INSERT INTO {fts}(rowid, body) VALUES (new.{key}, {new}); END")
        op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {source} BEGIN "
                   f"INSERT INTO {fts}({fts}, rowid, body) VALUES ('delete', old.{key}, {old}); END")
        op.execute(f"CREATE TRIGGER {fts}_update AFTER UPDATE ON {source} BEGIN "
                   f"INSERT INTO {fts}({fts}, rowid, body) VALUES ('delete', old.{key}, {old}); "
                   f"INSERT INTO {fts}(rowid, body) VALUES (new.{key}, {new}); END")
        row = _FOLD_SQLITE.format(value=expression.format(row=source))
        op.execute(f"INSERT INTO {fts}(rowid, body) SELECT {key}, {row} FROM {source}")


def _postgresql_upgrade() -> None:
    connection = op.get_bind()
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    schema = connection.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'unaccent'").scalar_one()
    # unaccent(text) is only STABLE (it reads its dictionary by search_path): naming the dictionary
    # with its schema makes the result fixed, which an index expression requires. ASCII punctuation
    # becomes a space, so that the text-search parser cuts words where SQLite's tokenizer does
    # (it would read "tg-7788" as "tg" and the number -7788, or "a.b@c.vn" as one e-mail token).
    # PARALLEL UNSAFE keeps a search statement in one process: it reads a few hundred rows, and
    # starting parallel workers for it costs more than that (tens of milliseconds on a busy server).
    op.execute(f"""
        CREATE OR REPLACE FUNCTION caredesk_search_fold(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL UNSAFE STRICT
        AS $$ SELECT regexp_replace(lower({schema}.unaccent('{schema}.unaccent'::regdictionary, value)),
                                    '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]+', ' ', 'g') $$
    """)
    large = (connection.exec_driver_sql(
        "SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass").scalar_one() or 0) > LARGE_TABLE_ROWS
    for name, (table, expression) in PG_INDEXES.items():
        if large and table == "messages":
            continue  # built CONCURRENTLY after start-up (helpdesk.search.indexes)
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin "
                   f"(to_tsvector('simple'::regconfig, caredesk_search_fold({expression})))")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgresql_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, (source, _key, _expression) in _SQLITE_TABLES.items():
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
        return
    for name in PG_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS caredesk_search_fold(text)")
