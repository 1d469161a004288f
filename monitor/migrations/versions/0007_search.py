"""Full-text search over posts, kept current by the database itself on every write

PostgreSQL: posts.search, a generated tsvector (Swedish; title weight A, text weight B), with a
GIN index. SQLite: posts_search, an FTS5 table of Snowball Swedish stems (rowid = posts.id),
kept by triggers that call omvarld_stems(), a function monitor.db registers on each connection.

Ingest, edits, erasure (title and text set to NULL) and retention deletes all keep the index
right without code of their own. A later SQLite migration that rebuilds `posts` (Alembic's batch
mode copies the table and drops the old one) drops these triggers with it: it must create them
again (TRIGGERS below).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A generated column rather than a trigger: PostgreSQL computes it on every INSERT (including
# ON CONFLICT and INSERT … SELECT) and UPDATE with nothing to forget or to order, fills it for
# existing rows when the column is added, and the two-argument to_tsvector is immutable, as a
# generated column requires. Its cost, recomputing on updates that do not touch title or text
# (deleted_at), is small next to the one-word-at-a-time parsing it replaces.
POSTGRESQL = [
    """
    ALTER TABLE posts ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('swedish', coalesce(title, '')), 'A')
        || setweight(to_tsvector('swedish', coalesce(text, '')), 'B')
    ) STORED
    """,
    "CREATE INDEX ix_posts_search ON posts USING gin (search)",
]

# unicode61 with diacritics kept: "å", "ä" and "ö" are letters of their own in Swedish ("får"
# and "far" are different words). The columns hold stems; the posts table holds the text.
SQLITE_TABLE = """
CREATE VIRTUAL TABLE posts_search USING fts5(
    title, body, tokenize = 'unicode61 remove_diacritics 0'
)
"""

# Posts with neither title nor text (erased ones, some media posts) have no entry at all.
TRIGGERS = [
    """
    CREATE TRIGGER posts_search_insert AFTER INSERT ON posts
    WHEN new.title IS NOT NULL OR new.text IS NOT NULL
    BEGIN
        INSERT INTO posts_search (rowid, title, body)
        VALUES (new.id, omvarld_stems(new.title), omvarld_stems(new.text));
    END
    """,
    # An edit rewrites every column, changed or not: only a different title or text re-indexes.
    """
    CREATE TRIGGER posts_search_update AFTER UPDATE OF title, text ON posts
    WHEN old.title IS NOT new.title OR old.text IS NOT new.text
    BEGIN
        DELETE FROM posts_search WHERE rowid = old.id;
        INSERT INTO posts_search (rowid, title, body)
        SELECT new.id, omvarld_stems(new.title), omvarld_stems(new.text)
        WHERE new.title IS NOT NULL OR new.text IS NOT NULL;
    END
    """,
    """
    CREATE TRIGGER posts_search_delete AFTER DELETE ON posts
    BEGIN
        DELETE FROM posts_search WHERE rowid = old.id;
    END
    """,
]

SQLITE_BACKFILL = """
INSERT INTO posts_search (rowid, title, body)
SELECT id, omvarld_stems(title), omvarld_stems(text) FROM posts
WHERE erased_at IS NULL AND (title IS NOT NULL OR text IS NOT NULL)
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL:
            op.execute(statement)
        return
    op.execute(SQLITE_TABLE)
    op.execute(SQLITE_BACKFILL)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_posts_search")
        op.execute("ALTER TABLE posts DROP COLUMN search")
        return
    for name in ("posts_search_insert", "posts_search_update", "posts_search_delete"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE posts_search")
