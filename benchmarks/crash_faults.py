"""Crash faults at scale: `jsm-mail poll` SIGKILLed at random moments over mixed mail and agents' answers
waiting to be mailed, restarted each time.

Usage: .venv/bin/python benchmarks/crash_faults.py [--kills 200] [--runs 4]
Runs tests/test_crash_anywhere.py (real Dovecot, contract-checking fake Jira) `--runs` times with
different seeds and `--kills` kills spread over them, then prints kills, mails, requests, doubled
and missing effects per run and in total, and the same for the answers mailed through the SMTP sink.
Goal: 0 doubled and 0 missing, in and out; the exit status is 1 when a run fails or misses the goal.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs in all (at least 1)")
    parser.add_argument("--runs", type=int, default=4, help="mailboxes, each with its own random kill times")
    args = parser.parse_args()
    if args.kills < 1 or args.runs < 1:
        parser.error("--kills and --runs must be at least 1")
    totals = {"kills": 0, "mails": 0, "requests": 0, "doubled": 0, "missing": 0,
              "answers": 0, "mailed": 0, "out_doubled": 0, "out_missing": 0}
    failed = False
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "figures.json"
            env = {**os.environ, "JSM_MAIL_CRASH_KILLS": str(args.kills // args.runs + (run < args.kills % args.runs)),
                   "JSM_MAIL_CRASH_SEED": str(1000 + run), "JSM_MAIL_CRASH_REPORT": str(report)}
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     "tests/test_crash_anywhere.py", "-k", "killed"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, check=False)
            if result.returncode != 0 or not report.is_file():
                why = [line for line in result.stdout.splitlines() if line.startswith(("E ", "FAILED", "ERROR"))]
                print(f"run {run}: FAILED\n" + "\n".join(why[:40]))
                failed = True
                continue
            figures = json.loads(report.read_text())
        print(f"run {run}: {figures['kills']} kills over {figures['runs']} starts, {figures['mails']} mails, "
              f"{figures['requests']} requests, {figures['doubled']} doubled, {figures['missing']} missing; "
              f"{figures['answers']} answers, {figures['mailed']} mailed, {figures['out_doubled']} mailed twice, "
              f"{figures['out_missing']} not mailed; {figures['seconds']} s")
        for key in totals:
            totals[key] += figures[key]
    print(f"total: {totals['kills']} kills, {totals['mails']} mails, {totals['requests']} requests, "
          f"doubled {totals['doubled']} (goal 0), missing {totals['missing']} (goal 0); "
          f"outbound: {totals['answers']} answers, {totals['mailed']} mailed, "
          f"mailed twice {totals['out_doubled']} (goal 0), not mailed {totals['out_missing']} (goal 0)")
    bad = totals["doubled"] + totals["missing"] + totals["out_doubled"] + totals["out_missing"]
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
