"""Name a database server without its password, and make connection errors safe."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import ConnectionFailedError


def _parse(conninfo: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        # psycopg's message quotes the string, password included.
        raise ValueError(
            "dsn: cannot be parsed; use a URI such as"
            " 'postgresql://user@host:5432/dbname' or key=value pairs such as"
            " 'host=localhost dbname=app'"
        ) from None


def describe(conninfo: str) -> str:
    """Return 'host:port/dbname' for *conninfo*, completed from PG* variables.

    Unset parts fall back the way libpq completes them, so the name matches
    the server the connection reaches.
    """
    params = _parse(conninfo)
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or os.environ.get("PGUSER") or _login_name()
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{host}:{port}/{dbname}"


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "postgres"


def pool_name(conninfo: object, fallback: str) -> str:
    """Return describe(conninfo), or *fallback* when the pool computes it per call."""
    return describe(conninfo) if isinstance(conninfo, str) else fallback


def password_of(conninfo: str) -> str | None:
    """Return the password *conninfo* or PGPASSWORD carries, if any."""
    password = _parse(conninfo).get("password") or os.environ.get("PGPASSWORD")
    return str(password) if password else None


def merge_kwargs(conninfo: str, kwargs: dict[str, Any]) -> str:
    """Return *conninfo* with the server and login settings that *kwargs* override.

    A pool connects with ``connect(conninfo, **kwargs)``, so these keys of
    *kwargs* win over the same keys of *conninfo*.
    """
    overrides = {key: kwargs[key] for key in _SERVER_KEYS if kwargs.get(key)}
    return make_conninfo(conninfo, **overrides) if overrides else conninfo


_SERVER_KEYS = ("host", "hostaddr", "port", "user", "password", "dbname")


def raise_connection_failed(
    conninfo: str, exc: psycopg.OperationalError, *, waited: str = ""
) -> NoReturn:
    """Raise an error naming the server and the cause of *exc*, minus secrets.

    *waited* describes what the caller waited for before this attempt, if
    anything.
    """
    cause = " ".join(str(exc).split()) or type(exc).__name__
    password = password_of(conninfo)
    # libpq does not quote passwords in its messages; replacing is a second
    # guard. NOTE: passwords under 4 characters are left alone, because
    # replacing them would garble ordinary words of the message.
    if password and len(password) >= 4:
        cause = cause.replace(password, "***")
    server = describe(conninfo)
    if waited:
        server = f"{server} ({waited})"
    error = ConnectionFailedError(
        f"cannot connect to {server}: {cause}; check that the server"
        " is running and that the host, port, user and password are right"
    )
    # Neither chained nor kept as context: psycopg's error keeps its
    # connection, and with it the password, in exc.pgconn. The message above
    # carries the cause.
    try:
        raise error from None
    finally:
        error.__context__ = None
