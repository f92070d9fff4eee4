"""Broken mail: corpus mails truncated, corrupted and malformed never crash parsing, classifying or the pipeline."""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.context import Context
from plugin.domain import MailRef, Outcome, OutcomeState, RawMail
from plugin.inspect import inspect_file
from plugin.pipeline import Handled, process
from tests.conftest import mail_file
from tests.corpus import CORPUS_DIR

CORPUS = sorted(path for pattern in ("zammad/*.box", "sisimai/*.eml", "flufl-bounce/*.txt", "talon/*.eml")
                for path in CORPUS_DIR.glob(pattern))
BOUNDARY = re.compile(rb'boundary="?([^";\s]+)"?', re.I)
HUGE_LINE_BYTES = 200_000
_link_numbers = itertools.count(1)

Mutation = Callable[[bytes], bytes]


def _at(data: bytes, share: int) -> int:
    """A position in the data, from a share in ten-thousandths."""
    return len(data) * share // 10_000


def _header_end(data: bytes) -> int:
    end = data.find(b"\n\n")
    return len(data) if end < 0 else end


@st.composite
def truncations(draw: st.DrawFn) -> Mutation:
    """The mail cut off anywhere, as by a dropped connection."""
    share = draw(st.integers(0, 10_000))
    return lambda data: data[:_at(data, share)]


@st.composite
def byte_flips(draw: st.DrawFn) -> Mutation:
    """Up to 20 bytes with bits flipped."""
    flips = draw(st.lists(st.tuples(st.integers(0, 9_999), st.integers(1, 255)), min_size=1, max_size=20))

    def flip(data: bytes) -> bytes:
        out = bytearray(data)
        for share, mask in flips:
            if out:
                out[_at(out, share)] ^= mask
        return bytes(out)
    return flip


@st.composite
def dropped_header_lines(draw: st.DrawFn) -> Mutation:
    """Header lines (or fold continuations) removed."""
    picks = draw(st.lists(st.integers(0, 200), min_size=1, max_size=8))

    def drop(data: bytes) -> bytes:
        end = _header_end(data)
        lines = data[:end].split(b"\n")
        gone = {pick % len(lines) for pick in picks}
        return b"\n".join(line for i, line in enumerate(lines) if i not in gone) + data[end:]
    return drop


@st.composite
def broken_boundaries(draw: st.DrawFn) -> Mutation:
    """A MIME boundary that no longer matches its parts."""
    how = draw(st.sampled_from(("close", "open", "param", "rename", "nest")))

    def rebreak(data: bytes) -> bytes:
        found = BOUNDARY.search(data)
        if found is None:
            return data
        boundary = found.group(1)
        if how == "close":  # the closing delimiter is gone
            return data.replace(b"--" + boundary + b"--", b"")
        if how == "open":  # the first part delimiter is gone
            return data.replace(b"--" + boundary, b"", 1)
        if how == "param":  # the Content-Type names no boundary
            return data[:found.start()] + data[found.end():]
        if how == "rename":  # the header and the body disagree
            return data[:found.start(1)] + b"x" + data[found.start(1):]
        # a part that claims to be a multipart with its parent's boundary
        return data.replace(b"--" + boundary + b"\n", b"--" + boundary + b"\nContent-Type: multipart/mixed; "
                            b'boundary="' + boundary + b'"\n', 1)
    return rebreak


@st.composite
def nul_insertions(draw: st.DrawFn) -> Mutation:
    """Runs of NUL bytes inserted anywhere."""
    spots = draw(st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 64)), min_size=1, max_size=10))

    def insert(data: bytes) -> bytes:
        for share, count in spots:
            at = _at(data, share)
            data = data[:at] + b"\x00" * count + data[at:]
        return data
    return insert


@st.composite
def huge_header_lines(draw: st.DrawFn) -> Mutation:
    """One header line of up to 200 kB on top."""
    name = draw(st.sampled_from((b"Subject", b"From", b"To", b"Message-ID", b"References", b"Content-Type",
                                 b"X-Filler")))
    unit = draw(st.sampled_from((b"a", b"a@b.example, ", b"=?utf-8?B?44GC?= ", b"<x@y> ", b"\xe3\x81\x82")))
    size = draw(st.integers(1_000, HUGE_LINE_BYTES))

    def grow(data: bytes) -> bytes:
        line = name + b": " + unit * (size // len(unit)) + b"\n"
        return line + data
    return grow


MUTATIONS = st.one_of(truncations(), byte_flips(), dropped_header_lines(), broken_boundaries(), nul_insertions(),
                      huge_header_lines())
BROKEN_MAIL = st.builds(lambda path, mutations: _apply(path.read_bytes(), mutations),
                        st.sampled_from(CORPUS), st.lists(MUTATIONS, min_size=1, max_size=3))


def _apply(data: bytes, mutations: list[Mutation]) -> bytes:
    for mutate in mutations:
        data = mutate(data)
    return data


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=BROKEN_MAIL)
def test_inspect_reads_broken_mail_without_raising(tmp_path_factory, data: bytes):
    path = tmp_path_factory.mktemp("broken") / "broken.eml"
    path.write_bytes(data)

    result = inspect_file(path)

    assert result["kind"] in ("mail", "auto_reply", "bounce", "feedback_report", "invalid")
    assert result["kind"] != "invalid" or result["reason"]


class _Unlabelled:
    """The pipeline's verdict is what these tests judge; no mailbox is involved."""

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        pass


def _handle(service, data: bytes) -> tuple[int, Handled]:
    """The link id and what the pipeline makes of the mail on a fresh link (so nothing was "handled
    before"). The fake Jira is healthy, so a RetryLater here is a failure."""
    link = service.store.add_link(replace(service.link, name=f"robust-{next(_link_numbers)}"))
    ctx = Context(service.settings, link, service.store, service.jira)
    return link.id, process(RawMail(MailRef(link.id, "1", len(data)), data), ctx, _Unlabelled())


def _outcome(service, data: bytes) -> Outcome:
    return _handle(service, data)[1].outcome


# What `process` may end a first attempt with: the mail was handled in Jira, or refused with a reason.
# (WAITING_RETRY is the poller's, for RetryLater that `process` raises; FAILED needs earlier attempts.)
HANDLED_OR_REJECTED = (OutcomeState.CREATED, OutcomeState.COMMENTED, OutcomeState.BOUNCE_RECORDED,
                       OutcomeState.IGNORED, OutcomeState.REJECTED)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=BROKEN_MAIL)
def test_pipeline_handles_or_rejects_broken_mail(service, data: bytes):
    link_id, handled = _handle(service, data)
    outcome = handled.outcome

    assert outcome.state in HANDLED_OR_REJECTED
    assert outcome.state is not OutcomeState.REJECTED or outcome.reason is not None
    assert outcome.state not in (OutcomeState.CREATED, OutcomeState.COMMENTED) or outcome.issue_key
    # Nothing lost: the ledger holds the same result before the mailbox is labelled.
    entry = service.store.ledger_entry(link_id, handled.about.ledger_id)
    assert entry is not None and (entry.state, entry.issue_key) == (outcome.state.value, outcome.issue_key)



# Crashes the mutations above once found in a longer random run.
def test_mail_with_a_utf8_message_id_does_not_stop_the_polling_round(service, mail_account, fake_jira):
    mail_account.append("From: a@example.org\nTo: support@example.test\nSubject: Hello\n"
                        "Message-ID: <\u3042@example.org>\n\nhello\n".encode())
    mail_account.append(mail_file("request_plain.eml"))

    service.poll()

    assert [r.reporter_email for r in fake_jira.requests] == ["a@example.org", "ann@example.org"]


def test_reply_with_a_utf8_in_reply_to_is_handled(service):
    data = ("From: a@example.org\nTo: support@example.test\nSubject: Re: Hello\nMessage-ID: <r@example.org>\n"
            "In-Reply-To: <\u3042@example.org>\n\nhello\n").encode()

    assert _outcome(service, data).state is OutcomeState.CREATED


def test_charset_label_with_a_nul_is_read_or_rejected(service):
    data = (b'From: a@example.org\nTo: support@example.test\nSubject: x\nMessage-ID: <nul@example.org>\n'
            b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n'
            b'Content-Type: text/plain; charset="us-\x00ascii"\n\nhello\n--b--\n')

    assert _outcome(service, data).state in (OutcomeState.CREATED, OutcomeState.REJECTED)
