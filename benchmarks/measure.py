"""Timing loops, summary statistics and memory readings.

Every loop here is bounded twice: by a number of calls and by a deadline on
the monotonic clock. A loop that reaches its deadline stops early and marks
its result, so that a slow machine gives fewer samples instead of a hung run.
"""

from __future__ import annotations

import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Call = Callable[[int], object]


@dataclass
class LatencyRun:
    """Per-call latencies of one repetition, in seconds, for each client label."""

    seconds: dict[str, list[float]]
    stopped_early: bool = False


@dataclass
class Latency:
    """Medians and 95th percentiles of the repetitions of one client, in seconds."""

    medians: list[float] = field(default_factory=list)
    p95s: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median of the per-repetition medians."""
        return statistics.median(self.medians)

    @property
    def p95(self) -> float:
        """The median of the per-repetition 95th percentiles."""
        return statistics.median(self.p95s)

    @property
    def spread(self) -> float:
        """(max - min) / median of the per-repetition medians: the noise."""
        return (max(self.medians) - min(self.medians)) / self.median


def percentile_95(values: Sequence[float]) -> float:
    """Return the 95th percentile of *values* (at least two values)."""
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def time_round_robin(
    calls: dict[str, Call], count: int, warmup: int, deadline: float
) -> LatencyRun:
    """Time *count* calls of each client, alternating between clients call by call.

    Alternating spreads slow phases of the server and the machine evenly over
    the clients. The order rotates on every round, so that no client always
    runs right after another. Each call gets its round number, from 0. The
    first *warmup* rounds are run but not recorded: they open connections and
    let psycopg prepare the statements (after 5 executions on a connection).
    """
    labels = list(calls)
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    stopped_early = False
    for round_number in range(warmup + count):
        if time.monotonic() > deadline:
            stopped_early = True
            break
        shift = round_number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            started = time.perf_counter()
            calls[label](round_number)
            elapsed = time.perf_counter() - started
            if round_number >= warmup:
                seconds[label].append(elapsed)
    return LatencyRun(seconds, stopped_early)


def summarize(runs: Sequence[LatencyRun]) -> dict[str, Latency]:
    """Reduce repetitions to the median and 95th percentile of each one."""
    result: dict[str, Latency] = {}
    for run in runs:
        for label, values in run.seconds.items():
            if len(values) < 2:
                continue
            latency = result.setdefault(label, Latency())
            latency.medians.append(statistics.median(values))
            latency.p95s.append(percentile_95(values))
    return result


@dataclass(frozen=True)
class ThreadedRun:
    """Calls completed by all threads together and the wall time they took."""

    calls: int
    seconds: float
    stopped_early: bool

    @property
    def calls_per_second(self) -> float:
        """Total throughput of the threads."""
        return self.calls / self.seconds


def run_threads(
    call: Callable[[int, int], object], threads: int, count: int, deadline: float
) -> ThreadedRun:
    """Run call(thread_number, i) for i < *count* on each of *threads* threads.

    The threads start together behind a barrier; the wall time runs from the
    barrier to the last thread's end. An exception in a thread is raised here.
    """
    barrier = threading.Barrier(threads + 1)
    done = [0] * threads
    errors: list[BaseException] = []
    stopped = threading.Event()

    def work(thread_number: int) -> None:
        barrier.wait()
        try:
            for i in range(count):
                if time.monotonic() > deadline:
                    stopped.set()
                    return
                call(thread_number, i)
                done[thread_number] += 1
        except BaseException as exc:  # re-raised by the caller's thread
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(n,), name=f"bench-{n}")
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return ThreadedRun(sum(done), elapsed, stopped.is_set())


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field_name: str) -> int | None:
    """Return a "Vm..." field of /proc/self/status in KiB, or None off Linux."""
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


def resident_kib() -> int:
    """Return the resident set size of this process in KiB (VmRSS), or 0."""
    return _status_kib("VmRSS") or 0


def peak_resident_kib() -> int:
    """Return the peak resident set size of this process in KiB.

    VmHWM on Linux. ru_maxrss is the fallback elsewhere; Linux does not use
    it because it also keeps the peak of threads that exited before a
    reset_peak_resident() call.
    """
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    # ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


def reset_peak_resident() -> bool:
    """Lower the peak resident set size to the current one; False if unsupported.

    Linux 4.0 and newer reset the peak (VmHWM) when "5" is written to
    /proc/self/clear_refs.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
