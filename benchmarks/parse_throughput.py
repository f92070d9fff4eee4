"""Parse + classify + reply-text cost per mail, as a ratio to the stdlib parser in the same run.

Usage: .venv/bin/python benchmarks/parse_throughput.py [--rounds N]
Prints mails/s for the stdlib baseline and for jsm-mail's stages over the shared corpus, the
ratio between them, and peak memory for one large mail relative to its size. The corpus is found
the way the tests find it ($JSM_MAIL_SHARED_DIR, or shared/ beside the checkout); without it the
benchmark stops with exit status 2.
"""
from __future__ import annotations

import argparse
import base64
import email
import email.policy
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

# Run as a script, sys.path holds benchmarks/ only; the tests' corpus finder lives beside plugin/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.classify.detectors import classify
from plugin.errors import MailRejected
from plugin.parse.mail import parse_bytes
from plugin.reply.text import reply_text
from tests.corpus import CORPUS_DIR, corpus_cases

# Corpora of whole mails; talon's html_body cases and email-reply-parser's files are bodies, not mails.
MAIL_CORPORA = ("zammad", "sisimai", "flufl-bounce", "talon")

Stage = Callable[[bytes], object]


def corpus_mails() -> list[bytes]:
    """Every whole mail of the shared corpus; exits with a clear message when the corpus is missing."""
    missing = [name for name in MAIL_CORPORA if not (CORPUS_DIR / name / "expectations.jsonl").is_file()]
    if missing:
        fail(f"no {', '.join(missing)} corpus in {CORPUS_DIR} (set JSM_MAIL_SHARED_DIR to the shared/ folder)")
    cases = [case for name in MAIL_CORPORA for case in corpus_cases(name)
             if case.expect.get("format", "rfc822") == "rfc822"]
    if not cases:
        fail(f"the corpus in {CORPUS_DIR} lists no mails")
    return [case.path.read_bytes() for case in cases]


def fail(reason: str) -> NoReturn:
    print(f"benchmark needs the shared corpus: {reason}", file=sys.stderr)
    raise SystemExit(2)


def rate(fn: Stage, mails: list[bytes], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for data in mails:
            fn(data)
    # perf_counter is monotonic but may not advance on a very coarse clock; one tick is the floor.
    elapsed = max(time.perf_counter() - start, time.get_clock_info("perf_counter").resolution)
    return rounds * len(mails) / elapsed


def stdlib(data: bytes) -> None:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    for part in msg.walk():
        part.get_payload(decode=True)


def ours(data: bytes) -> None:
    try:
        mail = parse_bytes(data)
    except MailRejected:
        return
    classify(mail)
    reply_text(mail.body_text, mail.body_html)


def large_mail(size_mb: int) -> bytes:
    payload = base64.encodebytes(bytes(range(256)) * (size_mb * 4096)).decode()
    return ("From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{payload}\r\n--b--\r\n").encode()


def peak_bytes(fn: Stage, data: bytes) -> int:
    tracemalloc.start()
    fn(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=positive, default=3)
    parser.add_argument("--large-mb", type=positive, default=20, help="size of the one large mail")
    args = parser.parse_args()
    mails = corpus_mails()
    base, mine = rate(stdlib, mails, args.rounds), rate(ours, mails, args.rounds)
    print(f"corpus mails: {len(mails)} from {CORPUS_DIR}")
    print(f"stdlib parse (baseline): {base:8.1f} mails/s")
    print(f"jsm-mail parse+classify+reply_text: {mine:8.1f} mails/s")
    print(f"cost ratio (jsm-mail / baseline time): {base / mine:.2f}x")
    big = large_mail(args.large_mb)
    print(f"large mail: {len(big) / 1e6:.1f} MB; peak memory stdlib {peak_bytes(stdlib, big) / len(big):.2f}x size, "
          f"jsm-mail {peak_bytes(ours, big) / len(big):.2f}x size")


if __name__ == "__main__":
    main()
