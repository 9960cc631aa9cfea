"""The library's loggers. Neither has a handler: the application picks the output."""

from __future__ import annotations

import logging

logger = logging.getLogger("hwlab_sql")
migrations_logger = logging.getLogger("hwlab_sql.migrations")


def log_query(name: str, elapsed: float) -> None:
    """Log at DEBUG that the named query ran, without its parameters."""
    logger.debug("query %s took %.2f ms", name, elapsed * 1000.0)
