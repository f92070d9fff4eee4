"""Recovery end to end on Dovecot and the fake Jira: retry rejected or failed mail, release a sender and re-run
its held mail, from the CLI and the processing log page; never a second request for one mail."""
from __future__ import annotations

from sqlalchemy import select

from plugin.recover import release_and_rerun, retry_logged
from plugin.runtime import Runtime
from plugin.store.models import ProcessingLogRow
from tests.conftest import jsm_mail, mail_file
from tests.test_sender_policy import ANN, customer_mail

PROCESSED, REJECTED = "jsm-processed", "jsm-rejected"


def log_ids(service, **where) -> list[int]:
    with service.store.session() as s:
        query = select(ProcessingLogRow.id).where(*(getattr(ProcessingLogRow, k) == v for k, v in where.items()))
        return list(s.scalars(query.order_by(ProcessingLogRow.id)))


def refused_then_fixed(service, mail_account, fake_jira) -> tuple[int, int]:
    """A mail Jira refuses (rejected, kept, labelled rejected); then Jira would take it."""
    uid = mail_account.append(mail_file("request_plain.eml"))
    fake_jira.fail_next(status=400)
    service.poll()
    [rejected] = log_ids(service, outcome="rejected")
    assert fake_jira.requests == [] and REJECTED in mail_account.flags(uid)
    return rejected, uid


def test_a_rejected_mail_retried_twice_makes_one_request_and_loses_its_rejected_label(service, mail_account,
                                                                                       fake_jira):
    log_id, uid = refused_then_fixed(service, mail_account, fake_jira)
    runtime = Runtime(service.settings, store=service.store, jira=service.jira)

    first = retry_logged(runtime, log_id)
    second = retry_logged(runtime, log_id)

    [request] = fake_jira.requests
    assert first.ok and first.issue_key == request.key
    assert first.line.startswith(f"log {log_id}: retried by admin: created {request.key}")
    assert second.ok and second.issue_key == request.key
    flags = mail_account.flags(uid)
    assert PROCESSED in flags and REJECTED not in flags
    retried = [e for e in service.log() if e.detail.startswith("retried by admin: ")]
    assert [(e.outcome, e.issue_key) for e in retried] == [("created", request.key)] * 2


def test_a_retry_after_the_ledger_lost_the_key_finds_the_request_by_its_mail_reference(service, mail_account,
                                                                                      fake_jira):
    """The first retry's request exists in Jira but its ledger row says rejected again (as after a crash between
    Jira's answer and the record): the mail reference finds it, so the second retry makes none."""
    from sqlalchemy import update

    from plugin.store.models import LedgerRow
    log_id, _ = refused_then_fixed(service, mail_account, fake_jira)
    runtime = Runtime(service.settings, store=service.store, jira=service.jira)
    assert retry_logged(runtime, log_id).ok
    with service.store.session() as s, s.begin():
        s.execute(update(LedgerRow).values(state="rejected", issue_key=None))

    again = retry_logged(runtime, log_id)

    [request] = fake_jira.requests
    assert again.ok and again.issue_key == request.key


def test_cli_recover_by_log_id_and_a_mail_that_cannot_be_retried(env, service, mail_account, fake_jira):
    log_id, _ = refused_then_fixed(service, mail_account, fake_jira)
    mail_account.append(mail_file("request_plain.eml").replace(b"<vpn-drops-1@", b"<vpn-drops-2@"))
    service.poll()
    [created] = log_ids(service, outcome="created")

    recovered = jsm_mail(env, "recover", "--log-id", str(log_id))
    refused = jsm_mail(env, "recover", "--log-id", str(created))

    assert recovered.returncode == 0, recovered.stderr
    assert f"log {log_id}: retried by admin: created SD-2" in recovered.stdout
    assert refused.returncode == 1
    assert f"log {created}: it was created; only rejected or failed mail is retried" in refused.stdout
    assert len(fake_jira.requests) == 2


def test_release_reruns_the_held_mails_once(env, service, mail_account, fake_jira):
    service.relink(sender_budget=2)
    uids = [mail_account.append(customer_mail(ANN, n)) for n in range(4)]
    service.poll()
    assert len(fake_jira.requests) == 2

    released = jsm_mail(env, "recover", "--sender", ANN, "--link", service.link.name)
    again = jsm_mail(env, "recover", "--sender", ANN, "--link", service.link.name)

    assert released.returncode == 0, released.stdout + released.stderr
    assert f"{ANN} released on {service.link.name}; 2 held mails retried" in released.stdout
    assert released.stdout.count("retried by admin: created SD-") == 2
    assert again.returncode == 1 and f"{ANN} was not quarantined" in again.stdout
    assert [r.summary for r in fake_jira.requests] == [f"Problem number {n}" for n in range(4)]
    assert all(REJECTED not in mail_account.flags(uid) for uid in uids)
    runtime = Runtime(service.settings, store=service.store, jira=service.jira)
    assert release_and_rerun(runtime, service.link, ANN)[0].ok is False


def test_a_retry_while_jira_is_down_leaves_the_mail_rejected_for_a_later_retry(service, mail_account, fake_jira):
    from plugin.link_status import link_status
    log_id, _ = refused_then_fixed(service, mail_account, fake_jira)
    runtime = Runtime(service.settings, store=service.store, jira=service.jira)
    fake_jira.start_outage()

    down = retry_logged(runtime, log_id)

    assert not down.ok and "not retried now, Jira or the mailbox is unavailable" in down.line
    assert link_status(service.store, service.link).pending == 0
    fake_jira.end_outage()
    assert retry_logged(runtime, log_id).ok and len(fake_jira.requests) == 1
