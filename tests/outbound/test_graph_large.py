"""Mail over Graph's 4 MB request limit, both ways: sent as a draft whose attachments are added by POST
(under 3 MB) or by upload session (chunked PUTs with Content-Range), then sent; read whole by $value."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from plugin.errors import RetryLater
from plugin.mailboxes.graph import REQUEST_LIMIT_BYTES, GraphMailbox, SendRefused, split_attachments
from tests.mailboxes.test_graph import graph_link

MB = 1024 * 1024


def big_mail(*files: tuple[str, bytes], inline: bytes | None = None) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "support@contoso.example", "ann@example.org", "[SD-7] Your logs"
    msg["Message-ID"], msg["In-Reply-To"] = "<sd-7-1@contoso.example>", "<ask@example.org>"
    msg.set_content("The logs you asked for.")
    if inline is not None:
        msg.add_alternative('<p>Logs <img src="cid:chart@contoso.example"></p>', subtype="html")
        msg.get_payload()[1].add_related(inline, "image", "png", cid="<chart@contoso.example>", filename="chart.png",
                                       disposition="inline")
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg


def sent_files(fake_graph) -> list[tuple[str, bytes, str | None]]:
    [sent] = fake_graph.sent
    mail = email.message_from_bytes(sent, policy=email.policy.default)
    return sorted((part.get_filename(), part.get_content(), part.get_content_disposition())
                  for part in mail.walk() if part.get_filename())


def test_a_mail_over_4_mb_goes_by_draft_small_files_by_post_large_ones_by_upload_session(fake_graph):
    large, small = bytes(range(256)) * (9 * MB // 256), b"small file" * 1000  # 9 MB, 10 KB
    chart = b"\x89PNG" + b"\0" * 2 * MB
    msg = big_mail(("large.bin", large), ("small.txt", small), inline=chart)

    with GraphMailbox.connect(graph_link(fake_graph), cafile=fake_graph.cafile) as graph:
        graph.send(msg.as_bytes())

    assert sent_files(fake_graph) == [("chart.png", chart, "inline"), ("large.bin", large, "attachment"),
                                      ("small.txt", small, "attachment")]
    user = f"/v1.0/users/{fake_graph.address}/messages"
    calls = [(method, path.removeprefix(user)) for method, path in fake_graph.requests if path.startswith(user)]
    assert calls[0] == ("POST", "") and calls[-1][0] == "POST" and calls[-1][1].endswith("/send")
    assert sum(path.endswith("/createUploadSession") for _, path in calls) == 1  # only the 9 MB file
    assert sum(path.endswith("/attachments") for _, path in calls) == 2  # the chart and the text
    assert fake_graph.uploads == [f"bytes 0-{3 * MB - 1}/{9 * MB}", f"bytes {3 * MB}-{6 * MB - 1}/{9 * MB}",
                                  f"bytes {6 * MB}-{9 * MB - 1}/{9 * MB}"]
    [sent] = fake_graph.sent
    kept = email.message_from_bytes(sent, policy=email.policy.default)
    assert kept["Message-ID"] == "<sd-7-1@contoso.example>" and kept["In-Reply-To"] == "<ask@example.org>"
    with GraphMailbox.connect(graph_link(fake_graph), cafile=fake_graph.cafile) as graph:
        assert graph.was_sent("sd-7-1@contoso.example")  # a crash after send is still found
    assert not [m for m in fake_graph.messages.values() if m.folder == "drafts"]


def test_a_mail_under_4_mb_still_goes_by_sendmail(fake_graph):
    msg = big_mail(("two.bin", b"\1" * 2 * MB))

    with GraphMailbox.connect(graph_link(fake_graph), cafile=fake_graph.cafile) as graph:
        graph.send(msg.as_bytes())

    assert ("POST", f"/v1.0/users/{fake_graph.address}/sendMail") in fake_graph.requests
    assert fake_graph.uploads == [] and len(fake_graph.sent) == 1


def test_a_draft_that_cannot_be_sent_is_deleted_and_the_mail_waits(fake_graph):
    fake_graph.may_send = False  # the app lacks Mail.Send: the draft is made, its send refused
    msg = big_mail(("large.bin", b"\2" * 5 * MB))

    with GraphMailbox.connect(graph_link(fake_graph), cafile=fake_graph.cafile) as graph, \
            pytest.raises(RetryLater, match=r"Mail\.Send application permission"):
        graph.send(msg.as_bytes())

    assert fake_graph.sent == []
    assert not [m for m in fake_graph.messages.values() if m.folder == "drafts"]


def test_a_mail_whose_text_alone_is_over_4_mb_is_refused_for_good(fake_graph):
    msg = big_mail()
    msg.set_content("x" * (REQUEST_LIMIT_BYTES + MB))

    with GraphMailbox.connect(graph_link(fake_graph), cafile=fake_graph.cafile) as graph, \
            pytest.raises(SendRefused, match="its text alone"):
        graph.send(msg.as_bytes())
    assert fake_graph.sent == []


def test_splitting_keeps_the_text_and_the_headers(fake_graph):
    msg = big_mail(("a.bin", b"\3" * 100))
    text, files = split_attachments(msg.as_bytes())
    kept = email.message_from_bytes(text, policy=email.policy.default)
    assert [(f.name, f.data, f.inline) for f in files] == [("a.bin", b"\3" * 100, False)]
    assert kept["Message-ID"] == msg["Message-ID"] and "The logs you asked for." in kept.get_body().get_content()
    assert list(kept.iter_attachments()) == []


def test_a_large_incoming_mail_is_read_whole_by_value(fake_graph):
    body = (b"0123456789abcdef" * 64 + b"\r\n") * (12 * MB // 1026)  # 12 MB of text lines
    mime = b"From: ann@example.org\r\nTo: support@contoso.example\r\nSubject: big\r\n\r\n" + body
    fake_graph.add(mime)

    with GraphMailbox.connect(graph_link(fake_graph), cafile=fake_graph.cafile) as graph:
        [ref] = graph.unhandled()
        raw = graph.fetch(ref)

    assert ref.size_bytes == len(mime) and raw.data == mime
