"""The feedback store: what users said, what the model answered, and how they rated it.

    store = FeedbackStore.open("feedback.db")            # SQLite file, or a database URL
    store.add_turn(Turn(id="chatcmpl-1", model="dpo", messages=[...], reply="..."))
    store.add_rating(Rating(turn_id="chatcmpl-1", thumb=-1, corrected="..."))
    store.assign("user-42", "dpo-vs-lora", {"A": 0.9, "B": 0.1})   # sticky A/B variant

Four tables (SQLAlchemy Core, so the same code runs on SQLite and PostgreSQL):

    turns          one model reply: its prompt messages, reply, model version, A/B variant,
                   sampling params, latency, token counts, mean logprob and entropy of the
                   reply's tokens, intent (when the client says), and a conversation key
    ratings        thumbs up/down and/or a 1-5 score, comment, corrected answer; linked to a
                   turn by its completion id (the turn's own row exists only when the server
                   logs conversations: the rating then carries the rated text itself)
    ab_assignments which variant of an A/B test each (hashed) user got
    schema_version the schema's version number

**Nothing identifying is written.** Every text goes through the cleaning step's PII
anonymizer inside `add_turn` / `add_rating`, before the INSERT (one placeholder registry
per record, so a value repeated within a conversation gets the same placeholder); user
ids are stored as a salted hash.

**Durability.** SQLite runs in WAL mode with `synchronous=FULL`: when `add_rating`
returns, the row is on disk, so a rating acknowledged to a client survives a kill -9 of
the server a moment later. Several processes may write one SQLite file (busy timeout
30 s); several *machines* should share a PostgreSQL database (`postgresql://...`, the
`postgres` extra).

**Upgrades never lose feedback.** The schema has a version number; opening a store
applies the missing upgrade steps in order, each in one transaction (DDL through
Alembic's operations, which work on both databases): version 1 had turns and ratings,
version 2 added the A/B tables and the turn's variant, version 3 the turn's experiment (so
variants of successive A/B tests are told apart). A store from a newer chatforge
is refused rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chatforge import redact
from chatforge.errors import UserError

SCHEMA_VERSION = 3
USER_SALT = os.environ.get("CHATFORGE_USER_SALT", "chatforge")  # hashing user ids: set your own per deployment

metadata = sa.MetaData()
turns = sa.Table(
    "turns",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("conversation", sa.String(32), index=True),
    sa.Column("user", sa.String(32)),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("variant", sa.String(64)),  # version 2
    sa.Column("experiment", sa.String(100), index=True),  # version 3
    sa.Column("kind", sa.String(8), nullable=False),  # chat | text
    sa.Column("messages", sa.Text, nullable=False),  # JSON list of {role, content}
    sa.Column("reply", sa.Text, nullable=False),
    sa.Column("sampling", sa.Text),  # JSON
    sa.Column("latency", sa.Float),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("logprob_mean", sa.Float),
    sa.Column("entropy_mean", sa.Float),
    sa.Column("finish_reason", sa.String(32)),
    sa.Column("intent", sa.String(64), index=True),
)
ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("turn_id", sa.String(64), nullable=False, index=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("model", sa.String(200)),
    sa.Column("thumb", sa.Integer),  # +1 / -1
    sa.Column("score", sa.Integer),  # 1..5
    sa.Column("comment", sa.Text),
    sa.Column("corrected", sa.Text),
    sa.Column("messages", sa.Text),  # JSON: the rated conversation, when the client sent it
    sa.Column("reply", sa.Text),
    sa.Column("user", sa.String(32)),
)
ab_assignments = sa.Table(
    "ab_assignments",
    metadata,
    sa.Column("user", sa.String(32), primary_key=True),
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("variant", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))


# -- records -----------------------------------------------------------------------------------


@dataclass
class Turn:
    """One model reply, as the server saw it (texts raw here; the store anonymizes them)."""

    id: str
    model: str
    messages: list[dict[str, str]]
    reply: str
    kind: str = "chat"
    created: float = field(default_factory=time.time)
    user: str | None = None  # the client's user id (stored hashed)
    variant: str | None = None
    experiment: str | None = None  # the A/B test the variant belongs to
    sampling: dict[str, Any] | None = None
    latency: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    logprob_mean: float | None = None
    entropy_mean: float | None = None
    finish_reason: str | None = None
    intent: str | None = None


@dataclass
class Rating:
    """A rating of one reply: a thumb (+1/-1), a 1-5 score, or both, with optional text."""

    turn_id: str
    thumb: int | None = None
    score: int | None = None
    comment: str | None = None
    corrected: str | None = None
    messages: list[dict[str, str]] | None = None
    reply: str | None = None
    model: str | None = None
    user: str | None = None
    created: float = field(default_factory=time.time)

    def check(self) -> None:
        if self.thumb not in (None, 1, -1):
            raise UserError(f"rating.thumb: {self.thumb!r}; expected 1 (up) or -1 (down)")
        if self.score is not None and not 1 <= self.score <= 5:
            raise UserError(f"rating.score: {self.score!r}; expected 1 to 5")
        if self.thumb is None and self.score is None:
            raise UserError("rating: needs a thumb (up/down) or a score (1-5)")


def hash_user(user: str | None) -> str | None:
    """A user id as stored: a salted sha256, cut to 32 hex digits (stable, not reversible)."""
    if not user:
        return None
    return hashlib.sha256(f"{USER_SALT}\x00{user}".encode()).hexdigest()[:32]


def conversation_key(messages: list[dict[str, str]], user: str | None) -> str:
    """Turns of one conversation share its opening (system prompt and first user message) and
    user; the OpenAI API has no conversation id, so this is the key."""
    head = [m for m in messages if m.get("role") in ("system", "developer")][:1] + [m for m in messages if m.get("role") == "user"][:1]
    text = json.dumps([user or "", [(m.get("role"), m.get("content")) for m in head]], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# -- the store ---------------------------------------------------------------------------------


def store_url(where: str | Path) -> str:
    """A database URL from a URL or a file path (a path means SQLite)."""
    s = str(where)
    if "://" in s:
        return s
    return f"sqlite:///{Path(s).expanduser().resolve()}"


class FeedbackStore:
    """Turns, ratings and A/B assignments in SQLite or PostgreSQL; safe to share between threads."""

    def __init__(self, url: str, *, anonymize: bool = True) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, ImportError) as e:
            raise UserError(f"--store {redact.url(url)}: {e}") from e
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        # Writes take SQLite's write lock when they begin (a read-then-write transaction
        # would otherwise fail at once when another process wrote in between).
        self.writer = self.engine.execution_options(immediate=True)
        self._anonymizer: Any = None
        self._anonymize = anonymize
        self._lock = threading.Lock()
        try:
            upgrade(self.writer)
        except sa.exc.OperationalError as e:
            raise UserError(f"--store {redact.url(url)}: cannot open the database: {e.orig}") from e

    @classmethod
    def open(cls, where: str | Path, **kwargs: Any) -> FeedbackStore:
        return cls(store_url(where), **kwargs)

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ------------------------------------------------------------------------------
    def _clean(self, texts: list[str]) -> list[str]:
        if not self._anonymize:
            return texts
        with self._lock:
            if self._anonymizer is None:
                from chatforge.data.pii import Anonymizer

                self._anonymizer = Anonymizer()
            return list(self._anonymizer.anonymize_texts(texts)[0])

    def _turn_row(self, t: Turn) -> dict[str, Any]:
        texts = self._clean([m.get("content") or "" for m in t.messages] + [t.reply])
        messages = [{"role": m["role"], "content": c} for m, c in zip(t.messages, texts, strict=False)]
        row = asdict(t)
        row.update(
            messages=json.dumps(messages, ensure_ascii=False),
            reply=texts[-1],
            sampling=json.dumps(t.sampling) if t.sampling is not None else None,
            user=hash_user(t.user),
            conversation=conversation_key(messages, hash_user(t.user)),
            logprob_mean=_finite(t.logprob_mean),
            entropy_mean=_finite(t.entropy_mean),
        )
        return row

    def _rating_row(self, r: Rating) -> dict[str, Any]:
        r.check()
        texts = self._clean([r.comment or "", r.corrected or "", r.reply or ""] + [m.get("content") or "" for m in r.messages or []])
        row = asdict(r)
        row.update(
            comment=texts[0] or None,
            corrected=texts[1] or None,
            reply=texts[2] or None,
            messages=json.dumps([{"role": m["role"], "content": c} for m, c in zip(r.messages, texts[3:], strict=True)], ensure_ascii=False) if r.messages else None,
            user=hash_user(r.user),
        )
        return row

    @staticmethod
    def _insert_turn(c: sa.Connection, row: dict[str, Any]) -> None:
        if c.execute(sa.select(turns.c.id).where(turns.c.id == row["id"])).first() is None:
            c.execute(turns.insert().values(**row))

    @staticmethod
    def _insert_rating(c: sa.Connection, row: dict[str, Any]) -> int:
        if row["model"] is None:  # the rated turn's model, when the store has the turn
            row["model"] = c.execute(sa.select(turns.c.model).where(turns.c.id == row["turn_id"])).scalar()
        key = c.execute(ratings.insert().values(**row)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def add_turn(self, t: Turn) -> None:
        """Store one reply (anonymized first). A turn id seen before is ignored."""
        row = self._turn_row(t)
        with self.writer.begin() as c:
            self._insert_turn(c, row)

    def add_rating(self, r: Rating) -> int:
        """Store a rating (anonymized first); its id. On disk when this returns."""
        row = self._rating_row(r)
        with self.writer.begin() as c:
            return self._insert_rating(c, row)

    def add_many(self, new_turns: list[Turn], new_ratings: list[Rating]) -> None:
        """Turns, then ratings, in one transaction: all stored or none."""
        turn_rows = [self._turn_row(t) for t in new_turns]
        rating_rows = [self._rating_row(r) for r in new_ratings]
        with self.writer.begin() as c:
            for row in turn_rows:
                self._insert_turn(c, row)
            for row in rating_rows:
                self._insert_rating(c, row)

    def assign(self, user: str, experiment: str, split: dict[str, float]) -> str:
        """The user's variant in `experiment`: drawn once from `split` (weights) by a hash of the
        user id, then stored, so it sticks even if the split changes later."""
        uid = hash_user(user) or ""
        with self.writer.begin() as c:
            found = c.execute(sa.select(ab_assignments.c.variant).where(ab_assignments.c.user == uid, ab_assignments.c.experiment == experiment)).scalar()
            if found is not None:
                return str(found)
            variant = pick_variant(uid, experiment, split)
            try:
                with c.begin_nested():
                    c.execute(ab_assignments.insert().values(user=uid, experiment=experiment, variant=variant, created=time.time()))
            except sa.exc.IntegrityError:  # another process assigned the same user just now
                variant = str(c.execute(sa.select(ab_assignments.c.variant).where(ab_assignments.c.user == uid, ab_assignments.c.experiment == experiment)).scalar())
            return variant

    # -- reading ------------------------------------------------------------------------------
    def turns(self, since: float = 0.0) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as c:
            for row in c.execute(sa.select(turns).where(turns.c.created >= since).order_by(turns.c.created, turns.c.id)):
                yield _decoded(row._asdict())

    def ratings(self, since: float = 0.0) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as c:
            for row in c.execute(sa.select(ratings).where(ratings.c.created >= since).order_by(ratings.c.id)):
                yield _decoded(row._asdict())

    def rated_turns(self) -> Iterator[dict[str, Any]]:
        """Every rating joined with its turn (when stored): the rated prompt, reply, model, intent."""
        with self.engine.connect() as c:
            q = sa.select(ratings, turns.c.messages.label("turn_messages"), turns.c.reply.label("turn_reply"), turns.c.intent, turns.c.variant, turns.c.experiment, turns.c.model.label("turn_model"), turns.c.logprob_mean, turns.c.entropy_mean).select_from(ratings.outerjoin(turns, ratings.c.turn_id == turns.c.id)).order_by(ratings.c.id)
            for row in c.execute(q):
                d = _decoded(row._asdict())
                d["messages"] = d["messages"] if d["messages"] is not None else _json(d.pop("turn_messages", None))
                d.pop("turn_messages", None)
                d["reply"] = d["reply"] if d["reply"] is not None else d.get("turn_reply")
                d.pop("turn_reply", None)
                d["model"] = d["model"] or d.pop("turn_model", None)
                d.pop("turn_model", None)
                yield d

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as c:
            return {t.name: int(c.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0) for t in (turns, ratings, ab_assignments)}


def pick_variant(uid: str, experiment: str, split: dict[str, float]) -> str:
    """A variant from weights, by a hash of (experiment, user): the same user always lands in the
    same place, and over many users the shares follow the weights."""
    total = sum(split.values())
    if not split or total <= 0 or any(w < 0 for w in split.values()):
        raise UserError(f"A/B split {split}: needs variants with weights >= 0 that sum to more than 0")
    x = int(hashlib.sha256(f"{experiment}\x00{uid}".encode()).hexdigest()[:15], 16) / float(1 << 60) * total
    acc = 0.0
    for name, w in split.items():
        acc += w
        if x < acc:
            return name
    return list(split)[-1]


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _decoded(d: dict[str, Any]) -> dict[str, Any]:
    for key in ("messages", "sampling"):
        if key in d:
            d[key] = _json(d[key])
    return d


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling would run DDL outside any transaction; this
    # module begins transactions itself (SQLAlchemy's recipe for transactional SQLite).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")


# -- schema versions -------------------------------------------------------------------------------


def _v1(op: Any) -> None:
    """Turns and ratings (chatforge's first store)."""
    op.create_table(
        "turns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created", sa.Float, nullable=False, index=True),
        sa.Column("conversation", sa.String(32), index=True),
        sa.Column("user", sa.String(32)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("sampling", sa.Text),
        sa.Column("latency", sa.Float),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("logprob_mean", sa.Float),
        sa.Column("entropy_mean", sa.Float),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("intent", sa.String(64), index=True),
    )
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("turn_id", sa.String(64), nullable=False, index=True),
        sa.Column("created", sa.Float, nullable=False, index=True),
        sa.Column("model", sa.String(200)),
        sa.Column("thumb", sa.Integer),
        sa.Column("score", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("corrected", sa.Text),
        sa.Column("messages", sa.Text),
        sa.Column("reply", sa.Text),
        sa.Column("user", sa.String(32)),
    )


def _v2(op: Any) -> None:
    """A/B tests: the assignments table and the variant each turn was served by."""
    op.create_table(
        "ab_assignments",
        sa.Column("user", sa.String(32), primary_key=True),
        sa.Column("experiment", sa.String(100), primary_key=True),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.add_column("turns", sa.Column("variant", sa.String(64)))


def _v3(op: Any) -> None:
    """The A/B test a turn's variant belongs to."""
    op.add_column("turns", sa.Column("experiment", sa.String(100)))
    op.create_index("ix_turns_experiment", "turns", ["experiment"])


STEPS: list[Callable[[Any], None]] = [_v1, _v2, _v3]  # STEPS[i] upgrades version i to i + 1
assert len(STEPS) == SCHEMA_VERSION


def version_of(engine: sa.Engine | Any) -> int:
    """The store's schema version (0: an empty database)."""
    with engine.connect() as c:
        if not sa.inspect(c).has_table("schema_version"):
            return 0
        return int(c.execute(sa.select(schema_version.c.version)).scalar() or 0)


def upgrade(engine: sa.Engine | Any, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing upgrade steps up to `target`, each in its own transaction; the version."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    current = version_of(engine)
    if current > SCHEMA_VERSION:
        raise UserError(f"the feedback store has schema version {current}; this chatforge knows up to {SCHEMA_VERSION}: upgrade chatforge")
    while current < target:
        with engine.begin() as c:
            if engine.dialect.name == "postgresql":  # one upgrader at a time across processes
                c.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
            if not sa.inspect(c).has_table("schema_version"):
                schema_version.create(c)
                c.execute(schema_version.insert().values(version=0))
            now = int(c.execute(sa.select(schema_version.c.version)).scalar() or 0)
            if now == current:  # nobody upgraded it meanwhile
                STEPS[current](Operations(MigrationContext.configure(c)))
                c.execute(schema_version.update().values(version=current + 1))
        current = version_of(engine)
    return current
