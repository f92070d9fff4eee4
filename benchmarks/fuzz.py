"""Hostile mail through `inspect` (parse, classify, reply text, routing keys) in process: crashes, time, memory.

Usage: .venv/bin/python benchmarks/fuzz.py [--cases N] [--scale F] [--budget S] [--memory-every K] [--seed N]
Draws N cases from tests/hostile.py (real mail mutated, mails built to exhaust a reader, and the
two spliced), reads each one as `jsm-mail inspect` does with the per-mail time budget, and prints
the number of cases, the crashes, the slowest case, and the bounds that time and peak memory kept
over every case, each beside its goal. Exit status 1 when a goal is missed.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import traceback
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings

# Run as a script, sys.path holds benchmarks/ only; the strategies live in tests/ beside plugin/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.inspect import inspect_file
from plugin.parse.budget import DEFAULT_SECONDS
from tests.hostile import Case, hostile_mail, seed_mails

MB = 1024 * 1024
# Goals: every mail read within a fixed cost plus a cost per megabyte (linear stages), and memory
# a small multiple of the mail's size (no stage copies the mail per part, line or level).
TIME_FIXED_S, TIME_PER_MB_GOAL_S = 0.25, 1.0
MEMORY_FIXED_MB, MEMORY_PER_SIZE_GOAL = 16, 12.0


@dataclass
class Tally:
    """What the run saw so far."""

    cases: int = 0
    bytes_read: int = 0
    over_budget: int = 0
    crashes: list[tuple[str, str]] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    time_per_mb: tuple[float, str] = (0.0, "")  # (processor seconds above TIME_FIXED_S per MB, case)
    memory_per_size: tuple[float, str] = (0.0, "")  # (peak above MEMORY_FIXED_MB / size, case)
    peak_mb: tuple[float, str] = (0.0, "")


def read(case: Case, folder: Path, budget_s: float, trace_memory: bool, tally: Tally) -> None:
    path = folder / "case.eml"
    path.write_bytes(case.data)
    size_mb = max(len(case.data), 1) / MB
    if trace_memory:
        tracemalloc.start()
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        result = inspect_file(path, time_budget_s=budget_s)
    except Exception:  # a crash is what this benchmark counts
        tally.crashes.append((str(case), traceback.format_exc(limit=-3)))
        result = None
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
        tally.peak_mb = max(tally.peak_mb, (peak, str(case)))
        tally.memory_per_size = max(tally.memory_per_size, (max(peak - MEMORY_FIXED_MB, 0) / size_mb, str(case)))
    tally.cases += 1
    tally.bytes_read += len(case.data)
    tally.over_budget += bool(result and "took longer than" in str(result["reason"]))
    tally.slowest = max(tally.slowest, (elapsed, str(case)))
    if not trace_memory:  # tracing slows reading several times over
        # Processor time, as the budget counts it: a loaded machine must not look like a slow reader.
        tally.time_per_mb = max(tally.time_per_mb, (max(elapsed_cpu - TIME_FIXED_S, 0) / size_mb, str(case)))


def run(cases: int, budget_s: float, memory_every: int, seed: int | None, scale: float) -> Tally:
    tally = Tally()
    seeds = seed_mails()

    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              derandomize=seed is None, suppress_health_check=list(HealthCheck))
    @given(case=hostile_mail(seeds, scale))
    def one(case: Case) -> None:
        read(case, folder, budget_s, memory_every > 0 and tally.cases % memory_every == 0, tally)
        if tally.cases % 500 == 0:
            print(f"... {tally.cases} cases", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (one if seed is None else hypothesis.seed(seed)(one))()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=DEFAULT_SECONDS, help="per-mail time budget, seconds")
    parser.add_argument("--memory-every", type=int, default=1,
                        help="trace memory on every K-th case (tracing slows reading; 0: never)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="shrink the largest hostile sizes by this factor (1: up to tens of MB per mail)")
    parser.add_argument("--memory-limit-gb", type=float, default=8,
                        help="address space for this process; a case past it counts as a crash (MemoryError)")
    parser.add_argument("--seed", type=int, default=None, help="a random run with this seed (default: fixed cases)")
    args = parser.parse_args()
    limit = int(args.memory_limit_gb * 1024 * MB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.perf_counter()
    tally = run(args.cases, args.budget, args.memory_every, args.seed, args.scale)
    wall = time.perf_counter() - started
    slow_s, slow_case = tally.slowest
    per_mb, per_mb_case = tally.time_per_mb
    per_size, per_size_case = tally.memory_per_size
    peak, peak_case = tally.peak_mb
    misses = [len(tally.crashes) > 0, slow_s > args.budget * 1.5, per_mb > TIME_PER_MB_GOAL_S,
              per_size > MEMORY_PER_SIZE_GOAL]
    print(f"cases: {tally.cases} ({tally.bytes_read / MB:.0f} MB of mail, scale {args.scale:g}, {wall:.0f} s)")
    print(f"crashes: {len(tally.crashes)} (goal 0)")
    for name, trace in tally.crashes[:5]:
        print(f"  crash: {name}\n    " + trace.strip().replace("\n", "\n    "))
    print(f"slowest case: {slow_s:.2f} s (goal <= {args.budget:g} s budget, stopped by it within "
          f"{args.budget * 0.5:g} s): {slow_case}")
    print(f"rejected over the time budget: {tally.over_budget}")
    print(f"time per mail bound: {TIME_FIXED_S:g} s + {per_mb:.3f} s/MB (goal <= {TIME_PER_MB_GOAL_S:g} s/MB); "
          f"worst: {per_mb_case}")
    print(f"peak memory per mail bound: {MEMORY_FIXED_MB} MB + {per_size:.1f}x size "
          f"(goal <= {MEMORY_PER_SIZE_GOAL:g}x); worst: {per_size_case}; largest peak {peak:.0f} MB: {peak_case}")
    raise SystemExit(1 if any(misses) else 0)


if __name__ == "__main__":
    main()
