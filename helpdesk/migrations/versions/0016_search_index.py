"""Search: accent-insensitive full-text indexes over message text, customer names and channel ids

SQLite: contentless FTS5 tables (unicode61 tokenizer, diacritics removed; "đ" is folded to "d" by the
triggers, which the tokenizer does not do) kept in step with their tables by triggers, so every write
path (ORM or Core inserts alike) indexes without knowing about search. A later migration that
recreates one of these tables in batch mode drops its triggers with it and must create them again.

PostgreSQL: the unaccent extension, an immutable folding function over it (lower case, no
diacritics, "đ" -> "d": the same folding as ``nlu.normalization.fold`` for Vietnamese) and GIN
indexes on the 'simple' text-search vector of the folded text. Messages keep that vector in a column,
``messages.search_vector``, set by a trigger on every insert and every change of the text (no model
describes it: the write paths need not know about search): a search then tests the most recent
messages one by one at the cost of a vector match, not of folding their text (tens of microseconds
a row). Customers and channel identities, far fewer, have expression indexes. On a messages table
that is already large, the column's backfill and its index are left to
``helpdesk.search.indexes.build_missing`` (run at start-up), which fills the column in small batches
and builds the index CONCURRENTLY, so that writes are never held for the length of either.

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
    "ix_messages_search": ("messages", "search_vector"),
    "ix_customers_search": (
        "customers", "to_tsvector('simple'::regconfig, caredesk_search_fold(coalesce(name, '')))"),
    "ix_channel_identities_search": (
        "channel_identities", "to_tsvector('simple'::regconfig, "
                              "caredesk_search_fold(coalesce(display_name, '') || ' ' || external_id))"),
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
    # the column is added without a default (no rewrite of the table); the trigger fills it for every
    # row written from now on, the UPDATE (or, on a large table, build_missing) for the rows before
    op.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_vector tsvector")
    op.execute("""
        CREATE OR REPLACE FUNCTION caredesk_messages_search_vector() RETURNS trigger
        LANGUAGE plpgsql
        AS $$ BEGIN
            NEW.search_vector := to_tsvector('simple'::regconfig, caredesk_search_fold(NEW.text));
            RETURN NEW;
        END $$
    """)
    op.execute("DROP TRIGGER IF EXISTS messages_search_vector ON messages")
    op.execute("CREATE TRIGGER messages_search_vector BEFORE INSERT OR UPDATE OF text ON messages "
               "FOR EACH ROW EXECUTE FUNCTION caredesk_messages_search_vector()")
    rows = connection.exec_driver_sql(
        "SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass").scalar_one()
    large = (rows or 0) > LARGE_TABLE_ROWS
    if not large:
        op.execute("UPDATE messages SET search_vector = "
                   "to_tsvector('simple'::regconfig, caredesk_search_fold(text)) WHERE search_vector IS NULL")
    for name, (table, expression) in PG_INDEXES.items():
        if large and table == "messages":
            continue  # filled and built after start-up (helpdesk.search.indexes)
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})")


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
    op.execute("DROP TRIGGER IF EXISTS messages_search_vector ON messages")
    op.execute("DROP FUNCTION IF EXISTS caredesk_messages_search_vector()")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    op.execute("DROP FUNCTION IF EXISTS caredesk_search_fold(text)")
