"""benchmarks/parse_throughput.py finds the corpus as the tests do and refuses to run without it."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.corpus import REPO_DIR, SHARED_DIR

BENCHMARK = REPO_DIR / "benchmarks" / "parse_throughput.py"


def run_benchmark(*args: str, shared_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSM_MAIL_SHARED_DIR": shared_dir}
    return subprocess.run([sys.executable, str(BENCHMARK), *args], env=env, cwd=REPO_DIR.parent,
                          capture_output=True, text=True, timeout=120)


def test_benchmark_reports_ratios_over_the_shared_corpus():
    done = run_benchmark("--rounds", "1", "--large-mb", "1", shared_dir=str(SHARED_DIR))

    assert done.returncode == 0, done.stderr
    assert re.search(r"^corpus mails: [1-9]\d* from ", done.stdout, re.M)
    assert re.search(r"^cost ratio \(jsm-mail / baseline time\): \d+\.\d\dx$", done.stdout, re.M)
    assert re.search(r"peak memory stdlib \d+\.\d\dx size, jsm-mail \d+\.\d\dx size$", done.stdout, re.M)


def test_benchmark_without_the_corpus_fails_loudly(tmp_path):
    done = run_benchmark(shared_dir=str(tmp_path))

    assert done.returncode == 2
    assert done.stdout == ""
    assert f"benchmark needs the shared corpus: no zammad, sisimai, flufl-bounce, talon corpus in {tmp_path}" \
        in done.stderr


def test_arrival_benchmark_prints_latency_with_and_without_idle_and_idle_cpu():
    done = subprocess.run([sys.executable, str(REPO_DIR / "benchmarks" / "arrival_latency.py"), "--mails", "2",
                           "--poll-interval", "2", "--idle-seconds", "1"],
                          env={**os.environ, "JSM_MAIL_SHARED_DIR": str(SHARED_DIR)}, cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^IDLE: +median +\d+\.\d\d s, p90 +\d+\.\d\d s +goal: <= 2 s median$", done.stdout, re.M)
    assert re.search(r"^polling every +2 s, no IDLE: median +\d+\.\d\d s, p90 +\d+\.\d\d s$", done.stdout, re.M)
    assert re.search(r"^serve's CPU over 1 s without mail, watcher idling: \d+\.\d\d% of a core +"
                     r"goal: < 1% of a core$", done.stdout, re.M)
