"""Parse + classify + reply-text cost per mail, as a ratio to the stdlib parser in the same run.

Usage: .venv/bin/python benchmarks/parse_throughput.py [--rounds N]
Prints mails/s for the stdlib baseline and for jsm-mail's stages over the shared corpus, the
ratio between them, and peak memory for one large mail relative to its size.
"""
from __future__ import annotations

import argparse
import base64
import email
import email.policy
import time
import tracemalloc
from pathlib import Path

from plugin.classify.detectors import classify
from plugin.errors import MailRejected
from plugin.parse.mail import parse_bytes
from plugin.reply.text import reply_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_mails() -> list[bytes]:
    files = [p for p in sorted(CORPUS.rglob("*")) if p.is_file() and p.suffix in {".eml", ".box", ".txt"}]
    return [p.read_bytes() for p in files]


def rate(fn, mails: list[bytes], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for data in mails:
            fn(data)
    return rounds * len(mails) / (time.perf_counter() - start)


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


def peak_bytes(fn, data: bytes) -> int:
    tracemalloc.start()
    fn(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mails = corpus_mails()
    base, mine = rate(stdlib, mails, args.rounds), rate(ours, mails, args.rounds)
    print(f"corpus mails: {len(mails)}")
    print(f"stdlib parse (baseline): {base:8.1f} mails/s")
    print(f"jsm-mail parse+classify+reply_text: {mine:8.1f} mails/s")
    print(f"cost ratio (jsm-mail / baseline time): {base / mine:.2f}x")
    big = large_mail(20)
    print(f"large mail: {len(big) / 1e6:.1f} MB; peak memory stdlib {peak_bytes(stdlib, big) / len(big):.2f}x size, "
          f"jsm-mail {peak_bytes(ours, big) / len(big):.2f}x size")


if __name__ == "__main__":
    main()
