"""Settings, read once from LRS_* environment variables, and the event-store choice."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Statements one write of the log takes at most. Each lookup of a write names every id, and
# SQLite takes at most 32,766 parameters a statement (PostgreSQL 65,535): a larger write failed
# whole, and a Kafka poll that did was read again for ever. A batch is never split, so none may
# be larger.
MAX_WRITE_STATEMENTS = 5_000

DEFAULT_STORE = "default"
STORE_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
STORE_NAME_RULE = ("a store name is 1 to 40 characters: a lowercase letter, then lowercase letters,"
                   " digits and '-'")


def check_store_name(name: str) -> str:
    """The name, or ValueError naming the rule (names become folders and schema names)."""
    if not isinstance(name, str) or not STORE_NAME.fullmatch(name):
        shown = name[:40] if isinstance(name, str) and name.isprintable() else "(not printable)"
        raise ValueError(f"store '{shown}': {STORE_NAME_RULE}")
    return name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".lrs-data")
    event_store: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/dbname, or sqlite:///path; "
        "empty means SQLite in the data folder",
    )
    bootstrap_credential: str | None = None
    store: str = Field(default=DEFAULT_STORE, description=(
        "the store (a school's own LRS inside this deployment) that commands such as lrs project"
        " and lrs export act on; lrs serve serves every store"))
    xapi_default_version: Literal["1.0.3", "2.0.0"] = Field(
        default="2.0.0", description="the version a response names when its request names none")
    secret_key: str | None = Field(
        default=None, description="seals 'more' links; give every API node the same one."
        " Empty: a random key kept in DATA_DIR/secret-key")
    attachment_store: str | None = Field(
        default=None, description="empty: the data folder; file:///dir; or postgresql://…")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_request_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_attachment_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_batch_statements: int = Field(
        default=1000, gt=0, le=MAX_WRITE_STATEMENTS,
        description="statements per POST or Kafka message; at most what one write takes")
    max_page_statements: int = Field(default=500, gt=0)
    authority_home_page: str = "urn:lrs:credentials"
    projections: Literal["embedded", "off"] = "embedded"
    projections_file: Path | None = Field(
        default=None, description="the DuckDB file of the views; default: DATA_DIR/views.duckdb")
    # View queries and analyst SQL (lrs/views_process.py, projections/queries.py).
    sql_timeout_seconds: float = Field(default=30.0, gt=0)
    sql_max_rows: int = Field(default=10_000, gt=0)
    sql_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    sql_slots: int = Field(default=2, gt=0)
    view_query_timeout_seconds: float = Field(default=10.0, gt=0)
    view_query_slots: int = Field(default=6, gt=0)
    views_memory_limit: str = Field(
        default="2GB", description="DuckDB memory_limit of the views (runner and queries together)")
    views_threads: int = Field(default=1, ge=0, le=64, description=(
        "DuckDB threads a catch-up or a query of the views that `lrs serve` and `lrs project`"
        " keep may use (queries at once each run on their own thread; LRS_VIEW_QUERY_SLOTS and"
        " LRS_SQL_SLOTS bound those); 0: DuckDB's default, one per core or the CPU quota"))
    cors_origins: list[str] = ["*"]
    # Abuse limits (lrs/api/ratelimit.py, lrs/api/server.py); a count or rate of 0 turns it off.
    auth_failures_per_address: int = Field(default=20, ge=0)
    auth_failures_per_key: int = Field(default=100, ge=0)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    trusted_proxies: list[str] = Field(
        default=[], description="proxy addresses or networks whose X-Forwarded-For is believed")
    credential_requests_per_second: float = Field(default=0.0, ge=0)
    credential_burst: int = Field(default=20, gt=0)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_idle_timeout_seconds: float = Field(default=30.0, gt=0)
    body_timeout_seconds: float = Field(default=600.0, gt=0)
    body_min_bytes_per_second: float = Field(default=500.0, ge=0)
    max_connections: int = Field(default=1000, gt=0)
    # The dashboard's sign-in (lrs/dashboard/sessions.py).
    session_hours: float = Field(default=8.0, gt=0, description="how long a sign-in lasts")
    session_cookie_secure: bool = Field(
        default=True, description="send the session cookie over HTTPS only (browsers also allow"
        " it on http://127.0.0.1 and localhost); false only on a trusted network without TLS")
    profile_put_without_precondition: Literal["refuse", "accept"] = Field(
        default="refuse", description=(
            "xAPI 1.0.3: a profile PUT with neither If-Match nor If-None-Match that would create a"
            " document gets 400 (refuse), or is stored (accept, for clients that never send one)"))
    workers: int = Field(default=0, ge=0, le=64, description=(
        "processes that answer HTTP (lrs/api/workers.py), 0 for one per core; with more than"
        " one, the parent process writes and they prepare"))

    def worker_count(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))

    @field_validator("store")
    @classmethod
    def _store_name(cls, value: str) -> str:
        return check_store_name(value)

    def for_store(self, name: str) -> Settings:
        """These settings for one store: its log, views file and attachments are its own."""
        return self if name == self.store else self.model_copy(update={"store": check_store_name(name)})

    @property
    def is_default_store(self) -> bool:
        return self.store == DEFAULT_STORE

    @property
    def store_dir(self) -> Path:
        """The store's folder: the data folder itself for `default` (today's paths), else
        DATA_DIR/stores/NAME."""
        return self.data_dir if self.is_default_store else self.data_dir / "stores" / self.store

    @field_validator("bootstrap_credential")
    @classmethod
    def _key_and_secret(cls, value: str | None) -> str | None:
        if value is not None and value != "" and (":" not in value or value.startswith(":")):
            raise ValueError("LRS_BOOTSTRAP_CREDENTIAL must be 'key:secret'")
        return value or None

    def event_store_env(self) -> dict[str, str]:
        """Translate LRS_EVENT_STORE into the eventsourcing library's environment."""
        url = self.event_store or f"sqlite:///{(self.store_dir / 'events.sqlite3').resolve()}"
        parsed = urlparse(url)
        if parsed.scheme in ("postgresql", "postgres"):
            # A store other than `default` is a schema of its own in the same database. Each
            # pool holds 2 connections per process when idle (up to 10 for another store and 20
            # for `default` under load): every store has a pool in each process of `lrs serve`,
            # and PostgreSQL allows 100 connections by default; 10 held idle by each process
            # ran two servers of two workers out of them.
            schema = {} if self.is_default_store else {"POSTGRES_SCHEMA": self.postgres_schema}
            return {
                **schema,
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": "lrs.store.postgres:PostgresStatementRecorder",
                "POSTGRES_DBNAME": parsed.path.lstrip("/") or "lrs",
                "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parsed.port or 5432),
                "POSTGRES_USER": unquote(parsed.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parsed.password or ""),
                "POSTGRES_POOL_SIZE": "2",
                "POSTGRES_MAX_OVERFLOW": "18" if self.is_default_store else "8",
                "POSTGRES_LOCK_TIMEOUT": "10",
            }
        if parsed.scheme == "sqlite":
            path = url[len("sqlite://"):]
            path = path[1:] if path.startswith("//") else path
            if self.event_store and not self.is_default_store and path != ":memory:":
                path = self._store_sqlite_path(path)
            uri_name, _, uri_query = path.removeprefix("file:").partition("?")
            if path != ":memory:" and "mode=memory" not in uri_query:
                Path(uri_name if path.startswith("file:") else path).parent.mkdir(
                    parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "APPLICATION_RECORDER_TOPIC": "lrs.store.sqlite:SQLiteStatementRecorder",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        raise ValueError(
            f"LRS_EVENT_STORE '{url}' is not supported: use postgresql://… or sqlite:///…"
        )

    def _store_sqlite_path(self, path: str) -> str:
        """A store's own database beside the configured one (DIR/stores/NAME/events.sqlite3),
        a file: URI's too, keeping its query: else every store would share one log."""
        if not path.startswith("file:"):
            return str(Path(path).parent / "stores" / self.store / "events.sqlite3")
        name, sep, query = path.removeprefix("file:").partition("?")
        if "mode=memory" in query:  # a shared in-memory database: its name is any text
            name = f"{name}/stores/{self.store}"
        else:
            name = str(Path(name).parent / "stores" / self.store / "events.sqlite3")
        return f"file:{name}{sep}{query}"

    @property
    def postgres_schema(self) -> str:
        """The PostgreSQL schema of a store other than `default` (names hold no '_', so the
        mapping is one to one)."""
        return "lrs_store_" + self.store.replace("-", "_")

    @property
    def projections_path(self) -> Path:
        if self.is_default_store:
            return self.projections_file or self.data_dir / "views.duckdb"
        folder = self.projections_file.parent if self.projections_file else self.data_dir
        return folder / "stores" / self.store / "views.duckdb"

    def describe_event_store(self) -> str:
        env = self.event_store_env()
        if env["PERSISTENCE_MODULE"].endswith("sqlite"):
            return f"SQLite at {env['SQLITE_DBNAME']}"
        schema = f" schema '{env['POSTGRES_SCHEMA']}'" if "POSTGRES_SCHEMA" in env else ""
        return (f"PostgreSQL database '{env['POSTGRES_DBNAME']}'{schema} at "
                f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}")


@lru_cache
def get_settings() -> Settings:
    return Settings()
