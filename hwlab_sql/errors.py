"""Exceptions raised by hwlab_sql.

Bad arguments raise the built-in ``ValueError`` before any query is sent, and
errors from the server stay psycopg's own (with ``sqlstate`` and ``diag``),
except where a class below gives them a meaning of this library.
"""

from __future__ import annotations

from uuid import UUID


class HwlabSqlError(Exception):
    """Base class of the errors this library defines."""


class NotFoundError(HwlabSqlError, LookupError):
    """A conversation with the requested id does not exist."""

    def __init__(self, conversation_id: UUID) -> None:
        super().__init__(f"conversation {conversation_id} not found")
        self.conversation_id = conversation_id


ErrNotFound = NotFoundError


class MigrationError(HwlabSqlError):
    """The schema scripts on disk disagree with what the database recorded."""


class QueryFileError(HwlabSqlError):
    """A file under ``queries/`` or ``schema/`` is missing or cannot be parsed."""


class ConnectionFailedError(HwlabSqlError, ConnectionError):
    """The server could not be reached or refused the connection.

    The message names the host, port and database and the cause, never the
    password.
    """
