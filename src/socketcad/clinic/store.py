"""The clinic's store: a database (SQLite in a data folder by default, PostgreSQL by URL) migrated by
Alembic, and the content-addressed file store beside it.

Consistency without a distributed transaction: files are written first (atomically, under their
hash), then the records that name them in one database transaction. A process killed in between
leaves at most an unreferenced file, never a record without its file. On SQLite every write
transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on the lock (up to
``BUSY_TIMEOUT_S``) instead of failing when a reader tries to become a writer.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from socketcad.clinic.files import FileStore
from socketcad.errors import InputError

BUSY_TIMEOUT_S = 60.0
DATABASE_FILE = "socketcad.db"


class Store:
    """Database + file store. ``url``: a SQLAlchemy database URL (PostgreSQL for a multi-user clinic);
    default: SQLite in ``data_folder``. Files always go under ``data_folder``."""

    def __init__(self, data_folder: Path, url: str | None = None):
        self.data_folder = Path(data_folder)
        try:
            self.data_folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{self.data_folder}: cannot create the data folder ({exc.strerror})") from None
        self.files = FileStore(self.data_folder)
        self.engine = _engine(url or URL.create("sqlite", database=str(self.data_folder / DATABASE_FILE)))
        migrate(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose changes are committed together at the end, or not at all."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _engine(url: str | URL) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"{url!r} is not a database URL (e.g. postgresql+psycopg://user@host/socketcad)") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connected)
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise InputError(f"database {parsed.get_backend_name()!r} is not supported: use SQLite (the default) or PostgreSQL")
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_connected(connection, _record) -> None:
    connection.isolation_level = None  # transactions begin where SQLAlchemy says (BEGIN IMMEDIATE), not in pysqlite
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic, socketcad/clinic/migrations)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "no connection"
        raise InputError(f"cannot open the database {engine.url.render_as_string(hide_password=True)}: {reason}") from None
