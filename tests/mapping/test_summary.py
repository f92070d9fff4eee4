import pytest

from plugin.mapping.summary import MAX_SUMMARY_CHARS, is_forward, strip_reply_prefix, summary_from


@pytest.mark.parametrize("subject, expected", [
    ("Re: Printer broken", "Printer broken"),
    ("RE: Fwd: FW: AW: WG: Printer broken", "Printer broken"),
    ("Re[2]: Printer broken", "Printer broken"),
    ("Re: [SD-42] Printer broken", "[SD-42] Printer broken"),
    ("ＲＥ：　プリンターが壊れました", "プリンターが壊れました"),
    ("ＲＥ：ＲＥ：プリンター", "プリンター"),
    ("返信: 転送: プリンター", "プリンター"),
    ("Fw: Printer", "Printer"),
    ("Reply needed: printer", "Reply needed: printer"),
    ("Regarding the printer", "Regarding the printer"),
    ("Printer RE: broken", "Printer RE: broken"),
])
def test_reply_and_forward_prefixes_are_removed_from_the_start_only(subject, expected):
    assert strip_reply_prefix(subject) == expected


@pytest.mark.parametrize("subject, forward", [
    ("Fwd: invoice", True), ("FW: invoice", True), ("WG: Rechnung", True), ("TR: facture", True),
    ("転送: 請求書", True), ("Fw: invoice", True), ("Re: Fwd: invoice", False), ("Forward planning", False),
])
def test_forward_is_recognised_by_its_first_prefix(subject, forward):
    assert is_forward(subject) is forward


def test_summary_is_one_line():
    assert summary_from("Printer\r\n broken\tagain", "") == "Printer broken again"


def test_long_subject_is_cut_to_jira_limit():
    summary = summary_from("x" * 1000, "")
    assert len(summary) == MAX_SUMMARY_CHARS and summary.endswith("…")


def test_empty_subject_takes_first_body_line():
    assert summary_from("Re: ", "\n\n  The VPN drops every hour.  \nSecond line") == "The VPN drops every hour."


def test_empty_subject_and_body_still_has_a_summary():
    assert summary_from("", "") == "(no subject)"
