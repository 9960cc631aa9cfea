"""Text and JSON output of the hwlab-sql command."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._query_check import QueryCheck
from .migrations import ScriptStatus
from .models import Conversation, ConversationSummary

# C0 and C1 control characters, which could move the cursor or recolour a
# terminal. Tab and newline are left to the callers.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MESSAGE_INDENT = "    "


def printable(text: str, *, one_line: bool = True) -> str:
    """Return *text* with control characters as escapes, for a terminal.

    With *one_line*, newlines and tabs are escaped too.
    """
    text = _CONTROL.sub(lambda match: repr(match[0])[1:-1], text)
    if one_line:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text


def utc_text(moment: datetime) -> str:
    """Return *moment* in UTC to the second, for text output."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_iso(moment: datetime) -> str:
    """Return *moment* in UTC as ISO 8601 with microseconds, for JSON output."""
    return moment.astimezone(timezone.utc).isoformat()


def show_path(path: Path) -> str:
    """Return *path* relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def dump_json(data: Any) -> str:
    """Return *data* as indented JSON with non-ASCII text as is, ending in a newline."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def summaries_text(summaries: list[ConversationSummary]) -> str:
    """Return a table of conversations, one per line under a header."""
    if not summaries:
        return "no conversations\n"
    rows = [f"{'id':36}  {'started at':23}  {'messages':>8}  model"]
    for summary in summaries:
        rows.append(
            f"{summary.id}  {utc_text(summary.started_at)}"
            f"  {summary.message_count:>8}  {printable(summary.model)}"
        )
    return "\n".join(rows) + "\n"


def summaries_json(summaries: list[ConversationSummary]) -> str:
    """Return conversations as a JSON array of objects."""
    return dump_json(
        [
            {
                "id": str(summary.id),
                "started_at": utc_iso(summary.started_at),
                "model": summary.model,
                "message_count": summary.message_count,
            }
            for summary in summaries
        ]
    )


def conversation_text(conversation: Conversation) -> str:
    """Return a conversation's fields, then each message with its content indented."""
    lines = [
        f"conversation  {conversation.id}",
        f"model         {printable(conversation.model)}",
        f"started at    {utc_text(conversation.started_at)}",
        f"messages      {len(conversation.messages)}",
    ]
    for number, message in enumerate(conversation.messages, start=1):
        lines.append("")
        lines.append(
            f"[{number}] {message.role}  {utc_text(message.created_at)}  {message.id}"
        )
        content = printable(message.content, one_line=False)
        for content_line in content.split("\n"):
            lines.append(f"{_MESSAGE_INDENT}{content_line}".rstrip())
    return "\n".join(lines) + "\n"


def conversation_json(conversation: Conversation) -> str:
    """Return a conversation and its messages, with ids and times, as JSON."""
    return dump_json(
        {
            "id": str(conversation.id),
            "started_at": utc_iso(conversation.started_at),
            "model": conversation.model,
            "messages": [
                {
                    "id": str(message.id),
                    "role": message.role,
                    "content": message.content,
                    "created_at": utc_iso(message.created_at),
                }
                for message in conversation.messages
            ],
        }
    )


def status_text(statuses: list[ScriptStatus]) -> str:
    """Return one line per schema script: file name, state and when it was applied."""
    width = max(len("script"), *(len(status.filename) for status in statuses))
    lines = [f"{'script':{width}}  {'state':7}  applied at"]
    for status in statuses:
        applied_at = "" if status.applied_at is None else utc_text(status.applied_at)
        lines.append(
            f"{status.filename:{width}}  {status.state:7}  {applied_at}".rstrip()
        )
    return "\n".join(lines) + "\n"


def check_text(checks: list[QueryCheck], directory: Path) -> str:
    """Return a line per failed or skipped query, then the counts."""
    lines = [
        f"{show_path(check.path)}:{check.line}: {check.name}: {check.message}"
        for check in checks
        if check.outcome != "prepared"
    ]
    counts = {
        outcome: sum(1 for check in checks if check.outcome == outcome)
        for outcome in ("prepared", "skipped", "failed")
    }
    lines.append(
        f"{len(checks)} queries in {show_path(directory)}{os.sep}:"
        f" {counts['prepared']} prepared, {counts['skipped']} skipped,"
        f" {counts['failed']} failed"
    )
    return "\n".join(lines) + "\n"
