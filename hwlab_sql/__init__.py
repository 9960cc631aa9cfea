"""Store LLM chat conversations in PostgreSQL with plain, named SQL.

The SQL lives in ``queries/*.sql`` and ``schema/*.sql``; Store and AsyncStore
add typed results, input checks and NotFoundError on top of it.
"""

from .errors import (
    ConnectionFailedError,
    ErrNotFound,
    HwlabSqlError,
    MigrationError,
    NotFoundError,
    QueryFileError,
)
from .models import Conversation, ConversationSummary, Message, Role
from .store import Store, Transaction, queries
from .store_async import AsyncStore, AsyncTransaction, async_queries

__all__ = [
    "AsyncStore",
    "AsyncTransaction",
    "ConnectionFailedError",
    "Conversation",
    "ConversationSummary",
    "ErrNotFound",
    "HwlabSqlError",
    "Message",
    "MigrationError",
    "NotFoundError",
    "QueryFileError",
    "Role",
    "Store",
    "Transaction",
    "async_queries",
    "queries",
]
