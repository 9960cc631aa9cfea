"""Exit statuses and one-line, password-free error messages of the hwlab-sql command."""

from __future__ import annotations

import os
import re

import psycopg

from ._conninfo import password_of
from .errors import HwlabSqlError, MigrationError, NotFoundError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_EDITED = 4
EXIT_CHECK_FAILED = 5

EXIT_STATUS_HELP = f"""\
exit status:
  0  success
  {EXIT_ERROR}  failure: no connection, an error from the server, or an invalid file
  {EXIT_USAGE}  invalid command line, such as a malformed id
  {EXIT_NOT_FOUND}  conversation not found
  {EXIT_EDITED}  a schema script was edited after it was applied
  {EXIT_CHECK_FAILED}  check: at least one query failed to prepare
"""

# The password of a URI (scheme://user:password@host) and of a key=value
# conninfo (password=secret or password='se cret').
_URI_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


class CommandError(Exception):
    """A failure of the command whose message is ready to print."""


def exit_status(exc: BaseException) -> int:
    """Return the exit status for an error that ends the command."""
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, MigrationError):
        return EXIT_EDITED
    return EXIT_ERROR


def error_line(exc: BaseException, dsn: str = "") -> str:
    """Return a one-line message of what failed, without any password."""
    if isinstance(exc, psycopg.Error):
        message = _server_message(exc)
    elif isinstance(exc, CommandError | HwlabSqlError | ValueError | OSError):
        message = str(exc)
    else:
        message = (
            f"unexpected {type(exc).__name__}: {exc}; run again with -vv to see"
            " the traceback"
        )
    return redact(" ".join(message.split()), dsn)


def redact(text: str, dsn: str = "") -> str:
    """Replace every password that *text* may contain with ***.

    Those are the passwords of *dsn*, DATABASE_URL and PGPASSWORD, and
    anything in the password position of a URI or a key=value conninfo.
    """
    for conninfo in (dsn, os.environ.get("DATABASE_URL", "")):
        try:
            password = password_of(conninfo)
        except ValueError:
            # The conninfo cannot be parsed, but the patterns below still apply.
            password = os.environ.get("PGPASSWORD")
        if password:
            text = text.replace(password, "***")
    text = _URI_PASSWORD.sub(r"\1***@", text)
    return _KEYWORD_PASSWORD.sub(r"\1***", text)


def _server_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().split("\n", 1)[0]
    if diag.message_hint:
        message += f" (hint: {diag.message_hint})"
    if isinstance(exc, psycopg.errors.UndefinedTable):
        message += "; run 'hwlab-sql migrate' to create the schema"
    return message or type(exc).__name__
