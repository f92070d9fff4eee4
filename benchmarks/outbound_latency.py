"""Time from an agent's comment to the customer's mail: by the Forge trigger, and by one polling round.

Usage: .venv/bin/python benchmarks/outbound_latency.py [--rounds 20]
Runs the trigger-and-polling test of tests/web/test_forge.py (real SMTP sink, contract-checking
fake Jira, signed Forge tokens) with `--rounds` comments each way and prints median and maximum
seconds. A polling round's figure comes on top of the wait for the next round
(JSM_MAIL_POLL_INTERVAL_S, 60 s by default). Goal: the trigger mails within seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/web/test_forge.py::test_each_comment_is_mailed_at_once_by_trigger_or_in_the_next_round_by_polling"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "latency.json"
        env = {**os.environ, "JSM_MAIL_LATENCY_ROUNDS": str(args.rounds), "JSM_MAIL_LATENCY_REPORT": str(report)}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT,
                                env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not report.is_file():
            print(f"FAILED\n{result.stdout[-3000:]}")
            return 1
        figures = json.loads(report.read_text())
    for name, label in (("trigger_s", "comment -> mail by Forge trigger"),
                        ("poll_round_s", "comment -> mail in one polling round")):
        values = figures[name]
        print(f"{label}: median {statistics.median(values):.3f} s, max {max(values):.3f} s "
              f"over {len(values)} comments")
    print("goal: the trigger within seconds (Forge allows 5 s per call); polling within one round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
