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


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSM_MAIL_SHARED_DIR": str(SHARED_DIR)}
    return subprocess.run([sys.executable, str(REPO_DIR / "benchmarks" / name), *args], env=env,
                          cwd=REPO_DIR.parent, capture_output=True, text=True, timeout=300)


def test_fuzz_benchmark_reports_crashes_time_and_memory_beside_their_goals():
    done = run_script("fuzz.py", "--cases", "20", "--scale", "0.01")

    assert done.returncode in (0, 1), done.stderr  # 1: a goal missed on a loaded machine, still a report
    assert re.search(r"^cases: 20 \(", done.stdout, re.M)
    assert re.search(r"^crashes: 0 \(goal 0\)$", done.stdout, re.M)
    assert re.search(r"^slowest case: \d+\.\d\d s \(goal <= 10 s budget", done.stdout, re.M)
    assert re.search(r"^time per mail bound: .* s/MB \(goal <= 1 s/MB\)", done.stdout, re.M)
    assert re.search(r"^peak memory per mail bound: 16 MB \+ \d+\.\dx size \(goal <= 12x\)", done.stdout, re.M)


def test_intake_benchmark_compares_poll_with_the_minimal_loop():
    done = run_script("intake.py", "--mails", "3")

    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2 would be a wrong result
    for phase in ("new mails", "replies"):
        assert re.search(rf"^{phase}: jsm-mail +\d+ mails/min, \d\.\d\d Jira calls/mail; baseline +\d+ mails/min, "
                         r"2\.00 calls/mail; wall time \d+\.\d\dx the baseline \(goal <= 1\.3x\)$", done.stdout, re.M)
