"""The results of a run and their rendering as plain-text tables."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .clients import COPY, FACADE, PSYCOPG, SQLALCHEMY
from .measure import Latency

# The targets the facade is held to, explained in docs/benchmarks.md.
SINGLE_CALL_TARGET = 1.15
INGEST_TIME_TARGET = 1.25
INGEST_MEMORY_TARGET = 1.5
# Growth of a read from the smallest to the largest data set that still counts
# as flat. The median of one client moves by more than this between runs.
FLAT_TOLERANCE = 0.05

CLIENTS = (PSYCOPG, FACADE, SQLALCHEMY)


@dataclass
class Results:
    """Everything one run measured, in seconds, KiB and calls."""

    plan: str
    data_sets: list[int]
    machine: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    single_adds: dict[str, Latency] = field(default_factory=dict)
    ingest: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ingest_memory: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gets: dict[str, dict[str, Latency]] = field(default_factory=dict)
    lists: dict[str, dict[str, Latency]] = field(default_factory=dict)
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    memory: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Read name, then data set size, then the fields of plans.ServerPlan.
    plans: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def machine(server_version: str, settings: dict[str, str]) -> dict[str, str]:
    """Describe the machine, the software versions and the server *settings*."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    versions = {
        name: metadata.version(name)
        for name in ("psycopg", "psycopg-pool", "aiosql", "sqlalchemy")
    }
    return {
        "load_at_start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "cpus": str(os.cpu_count()),
        "memory": f"{pages / 2**30:.1f} GiB",
        "system": f"{platform.system()} {platform.release()}",
        "postgresql": server_version,
        "python": platform.python_version(),
        "settings": ", ".join(f"{name} {value}" for name, value in settings.items()),
        **versions,
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def _mib(kib: float) -> str:
    return f"{kib / 1024:7.1f} MiB"


def _ratio(value: float) -> str:
    return f"{value:6.2f}x"


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """Align *rows* under *header*: text to the left, numbers to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if column < text_columns else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _latency_section(title: str, latencies: dict[str, Latency]) -> str:
    base = latencies[PSYCOPG]
    rows = [
        [
            label,
            _ms(latencies[label].median),
            _ms(latencies[label].p95),
            _ratio(latencies[label].median / base.median),
            _ratio(latencies[label].p95 / base.p95),
            f"{latencies[label].spread:6.1%}",
        ]
        for label in CLIENTS
        if label in latencies
    ]
    header = ["client", "median", "p95", "median/psycopg", "p95/psycopg", "noise"]
    return f"{title}\n{_table(header, rows)}"


def _data_set_name(total: int) -> str:
    if total % 1_000_000 == 0:
        return f"{total // 1_000_000:,}M msgs"
    return f"{total // 1000:,}k msgs"


def growth_ratios(larger: Latency, smaller: Latency) -> list[float]:
    """Return larger / smaller for each repetition.

    Both series ran call by call side by side, so a busy moment of the
    machine slows both alike and their ratio varies less than either one.
    """
    return [a / b for a, b in zip(larger.medians, smaller.medians, strict=True)]


def is_flat(ratios: list[float]) -> bool:
    """Tell whether the median growth is within the noise of the ratios.

    The noise is half the range of the ratios, and at least FLAT_TOLERANCE.
    """
    noise = max((max(ratios) - min(ratios)) / 2, FLAT_TOLERANCE)
    return statistics.median(ratios) - 1 <= noise


def _flat_section(
    title: str, by_data_set: dict[str, dict[str, Latency]], data_sets: list[int]
) -> str:
    smallest, largest = str(data_sets[0]), str(data_sets[-1])
    rows = []
    for label in CLIENTS:
        cells = [label]
        for total in data_sets:
            latencies = by_data_set[str(total)]
            cells.append(_ms(latencies[label].median))
            cells.append(_ratio(latencies[label].median / latencies[PSYCOPG].median))
        ratios = growth_ratios(
            by_data_set[largest][label], by_data_set[smallest][label]
        )
        cells.append(_ratio(statistics.median(ratios)))
        cells.append(f"{min(ratios):.2f}-{max(ratios):.2f}")
        rows.append(cells)
    header = ["client"]
    for total in data_sets:
        header += [_data_set_name(total), "/psycopg"]
    header += ["largest/smallest", "range"]
    return f"{title}\n{_table(header, rows)}"


def _plans_section(results: Results) -> str:
    rows = []
    for name, by_data_set in results.plans.items():
        for total in results.data_sets:
            plan = by_data_set[str(total)]
            rows.append(
                [
                    name,
                    _data_set_name(total),
                    plan["nodes"],
                    plan["kind"],
                    f"{plan['rows']:,}",
                    f"{plan['buffers']:,}",
                    _ms(plan["planning_ms"] / 1000),
                    _ms(plan["execution_ms"] / 1000),
                ]
            )
    title = (
        "Server side of reads 3 and 4 (get_conversation: its messages query),"
        " prepared by psycopg on a fresh connection and run 6 times, then"
        " EXPLAIN ANALYZE without per-node timing: the plan, generic or custom,"
        " rows, buffers, and median planning and execution times"
    )
    header = [
        "read",
        "data set",
        "plan",
        "kind",
        "rows",
        "buffers",
        "planning",
        "execution",
    ]
    return f"{title}\n{_table(header, rows, text_columns=4)}"


def _plans_differ(results: Results, name: str) -> bool:
    nodes = {plan["nodes"] for plan in results.plans.get(name, {}).values()}
    return len(nodes) > 1


def _ingest_medians(results: Results) -> dict[str, dict[str, float]]:
    medians = {}
    for label, runs in results.ingest.items():
        rates = [run["rows"] / run["seconds"] for run in runs]
        alone = results.ingest_memory[label]
        medians[label] = {
            "rows_per_second": statistics.median(rates),
            "noise": (max(rates) - min(rates)) / statistics.median(rates),
            "alone_rows_per_second": statistics.median(
                run["rows"] / run["seconds"] for run in alone
            ),
            "peak_kib": statistics.median(run["peak_kib"] for run in alone),
            "growth_kib": statistics.median(
                run["peak_kib"] - run["before_kib"] for run in alone
            ),
        }
    return medians


def _ingest_section(results: Results) -> str:
    medians = _ingest_medians(results)
    base = medians[COPY]
    rows = []
    for label in (COPY, PSYCOPG, FACADE, SQLALCHEMY):
        median = medians[label]
        rows.append(
            [
                label,
                f"{median['rows_per_second']:9,.0f}",
                _ratio(base["rows_per_second"] / median["rows_per_second"]),
                f"{median['noise']:6.1%}",
                f"{median['alone_rows_per_second']:9,.0f}",
                _mib(median["peak_kib"]),
                _ratio(median["peak_kib"] / base["peak_kib"]),
                _mib(median["growth_kib"]),
            ]
        )
    header = [
        "client",
        "rows/s",
        "time/COPY",
        "noise",
        "rows/s alone",
        "peak RSS",
        "peak/COPY",
        "growth",
    ]
    rows_per_run = results.ingest[COPY][0]["rows"]
    title = (
        f"2. add_messages, bulk ingest of {rows_per_run:,} messages per client, 100"
        " per call and transaction. rows/s: clients interleaved call by call in"
        " one process. Alone: each client in a fresh process, whose peak RSS"
        " (VmHWM) is shown, and its growth over the RSS before the first call."
    )
    return f"{title}\n{_table(header, rows)}"


def _threads_section(results: Results) -> str:
    rates = {
        label: statistics.median(r["calls"] / r["seconds"] for r in runs)
        for label, runs in results.threads.items()
    }
    rows = [
        [label, f"{rates[label]:9,.0f}", _ratio(rates[PSYCOPG] / rates[label])]
        for label in CLIENTS
        if label in rates
    ]
    title = "5. add_message from 8 threads through one pool of 8 connections"
    return f"{title}\n{_table(['client', 'calls/s', 'time/psycopg'], rows)}"


def _memory_section(results: Results) -> str:
    names = ["add_message", "get_conversation", "list_conversations", "threads"]
    rows = []
    for label in CLIENTS:
        probe = results.memory.get(label)
        if probe is None:
            continue
        cells = [label]
        for name in names:
            peak = probe[name]["peak_kib"]
            growth = peak - probe[name]["before_kib"] if peak is not None else None
            cells.append("n/a" if growth is None else _mib(growth))
        rows.append(cells)
    title = (
        "Peak memory growth of the other workloads (fresh process per client;"
        " peak RSS reset before each workload, minus the RSS before it)"
    )
    return f"{title}\n{_table(['client', *names], rows)}"


def _targets(results: Results) -> str:
    lines = []

    def check(met: bool, text: str) -> None:
        lines.append(f"  [{'met' if met else 'MISSED'}] {text}")

    adds = results.single_adds
    median_ratio = adds[FACADE].median / adds[PSYCOPG].median
    p95_ratio = adds[FACADE].p95 / adds[PSYCOPG].p95
    check(
        max(median_ratio, p95_ratio) <= SINGLE_CALL_TARGET,
        f"add_message facade/psycopg: median {median_ratio:.2f}x, p95"
        f" {p95_ratio:.2f}x (target {SINGLE_CALL_TARGET}x)",
    )
    ingest = _ingest_medians(results)
    time_ratio = ingest[COPY]["rows_per_second"] / ingest[FACADE]["rows_per_second"]
    check(
        time_ratio <= INGEST_TIME_TARGET,
        f"add_messages facade/COPY time: {time_ratio:.2f}x (target"
        f" {INGEST_TIME_TARGET}x)",
    )
    peak_ratio = ingest[FACADE]["peak_kib"] / ingest[COPY]["peak_kib"]
    check(
        peak_ratio <= INGEST_MEMORY_TARGET,
        f"add_messages facade/COPY peak RSS: {peak_ratio:.2f}x (target"
        f" {INGEST_MEMORY_TARGET}x)",
    )
    names = [str(total) for total in results.data_sets]
    for name, by_data_set in (
        ("get_conversation", results.gets),
        ("list_conversations", results.lists),
    ):
        # The largest data set against the smallest, then against each other.
        for smaller in names[:-1]:
            ratios = growth_ratios(
                by_data_set[names[-1]][FACADE], by_data_set[smaller][FACADE]
            )
            text = (
                f"{name} facade {_data_set_name(int(names[-1]))} /"
                f" {_data_set_name(int(smaller))}: {statistics.median(ratios):.2f}x,"
                f" {min(ratios):.2f}-{max(ratios):.2f} over repetitions (flat when"
                f" the growth is within half that range or {FLAT_TOLERANCE:.0%})"
            )
            if _plans_differ(results, name):
                text += "; the server plans differ between data sets, see above"
            check(is_flat(ratios), text)
    return "Targets\n" + "\n".join(lines)


def render(results: Results) -> str:
    """Return the report: one table per workload, then the targets."""
    info = results.machine
    header = (
        f"hwlab_sql benchmark, {results.plan} run in {results.seconds:.0f} s."
        " Times are medians over repetitions; a ratio above 1 means slower (or"
        " more memory) than the baseline.\n"
        f"Machine: {info['cpus']} CPUs, {info['memory']}, {info['system']};"
        f" PostgreSQL {info['postgresql']}; Python {info['python']}; psycopg"
        f" {info['psycopg']}, psycopg-pool {info['psycopg-pool']}, aiosql"
        f" {info['aiosql']}, SQLAlchemy {info['sqlalchemy']}.\n"
        f"Server settings: {info['settings']}.\n"
        f"Load average (1, 5, 15 min) at the start: {info['load_at_start']};"
        f" at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}."
    )
    largest = f"{results.data_sets[-1]:,}"
    sections = [
        header,
        _latency_section(
            f"1. add_message, single calls (10,000 conversations, {largest} messages;"
            " each client first stored 8 transcripts of 100 messages, one per"
            " connection of the psycopg pools)",
            results.single_adds,
        ),
        _ingest_section(results),
        _flat_section(
            "3. get_conversation of a conversation with 1,000 messages"
            " (10,000 conversations), all data sets interleaved call by call",
            results.gets,
            results.data_sets,
        ),
        _flat_section(
            "4. list_conversations(limit=100) (10,000 conversations), all data sets"
            " interleaved call by call",
            results.lists,
            results.data_sets,
        ),
        _plans_section(results),
        _threads_section(results),
        _memory_section(results),
        _targets(results),
    ]
    if results.notes:
        sections.append("Notes\n" + "\n".join(f"  {note}" for note in results.notes))
    return "\n\n".join(sections)
