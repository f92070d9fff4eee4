"""Progress of long work on the command line: a backlog's first poll and a replay of many files."""
from __future__ import annotations

import io
import logging

from plugin.progress import ProgressLine
from tests.conftest import jsm_mail, mail_file
from tests.test_sender_policy import customer_mail


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_poll_of_a_backlog_shows_how_far_it_got(env, service, mail_account):
    for n in range(3):
        mail_account.append(customer_mail(f"user{n}@example.org", n))

    polled = jsm_mail(env, "poll", "--once")

    assert polled.returncode == 0, polled.stderr
    assert polled.stderr.splitlines()[-1].endswith(f"INFO plugin.progress: {service.link.name}: 3/3 mails")


def test_a_replay_of_many_files_shows_how_far_it_got(env, service, tmp_path):
    files = []
    for n in range(3):
        path = tmp_path / f"mail{n}.eml"
        path.write_bytes(mail_file("request_plain.eml"))
        files.append(str(path))

    replayed = jsm_mail(env, "replay", "--link", service.link.name, *files)

    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stderr.splitlines()[-1].endswith("INFO plugin.progress: replay: 3/3 mails")


def test_a_pipe_gets_a_log_line_every_so_many_mails_and_a_terminal_one_line_redrawn(caplog):
    caplog.set_level(logging.INFO, logger="plugin.progress")
    pipe, terminal = io.StringIO(), Terminal()
    to_pipe, to_terminal = ProgressLine(pipe, every=100), ProgressLine(terminal)

    for done in range(1, 251):
        to_pipe("support", done, 250)
        to_terminal("support", done, 250)
    to_terminal.finish()

    assert pipe.getvalue() == ""
    assert caplog.messages == ["support: 100/250 mails", "support: 200/250 mails", "support: 250/250 mails"]
    assert terminal.getvalue().startswith("\r\x1b[Ksupport: 1/250 mails")
    assert terminal.getvalue().endswith("\r\x1b[Ksupport: 250/250 mails\n")
    assert "\n" not in terminal.getvalue()[:-1]
