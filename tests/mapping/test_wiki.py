import pytest

from plugin.mapping.wiki import escape_wiki


@pytest.mark.parametrize("text, expected", [
    ("use {code} here", r"use \{code\} here"),
    ("*not bold*", r"\*not bold\*"),
    ("[not a link]", r"\[not a link\]"),
    ("a_b_c", r"a\_b\_c"),
    ("- not a bullet", r"\- not a bullet"),
    ("# not a numbered item", r"\# not a numbered item"),
    ("-not struck-", r"\-not struck\-"),
    ("??not a citation??", r"\??not a citation\??"),
    ("a | b", r"a \| b"),
    ("Thanks!", r"Thanks\!"),
    ("2024-01-05 and e-mail", "2024-01-05 and e-mail"),
    ("日本語のテキスト", "日本語のテキスト"),
])
def test_markup_characters_are_escaped(text, expected):
    assert escape_wiki(text) == expected


def test_urls_stay_intact_so_jira_links_them():
    text = "see https://example.com/a_b-c?x=1&y=[2] please"
    assert escape_wiki(text) == "see https://example.com/a_b-c?x=1&y=[2] please"
