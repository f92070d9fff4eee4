"""Alert mail on real rounds: a link whose mailbox refuses the login is reported once after the /health threshold
and once when it recovers, through the aiosmtpd sink; never once a round."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from plugin.domain import Secret, Security
from plugin.store.models import LinkStateRow

ADMINS = ("ops@example.test", "oncall@example.test")


def failing_long_ago(service) -> None:
    """The current failure began longer ago than the threshold."""
    long_ago = datetime.now(UTC) - timedelta(seconds=service.settings.link_failing_alert_s + 60)
    with service.store.session() as s, s.begin():
        s.execute(update(LinkStateRow).values(failing_since=long_ago))


def alerts(smtp_sink) -> list[str]:
    return [mail.message["Subject"] for mail in smtp_sink.messages]


def test_a_failing_link_is_reported_once_then_its_recovery_once(sending, smtp_sink, mail_account):
    service = sending
    service.settings = service.settings.with_(alert_to=ADMINS)
    password = service.link.password
    service.relink(password=Secret("wrong password"))

    service.poll()
    assert alerts(smtp_sink) == []  # failing, but not for long yet
    failing_long_ago(service)
    service.poll()
    service.poll()

    assert alerts(smtp_sink) == [f"jsm-mail: link {service.link.name} is failing"]
    [alert] = smtp_sink.messages
    assert set(alert.rcpt_tos) == set(ADMINS)
    assert alert.message["Auto-Submitted"] == "auto-generated"
    body = alert.message.get_content()
    assert "has failed since" in body and "wrong password" not in body

    service.relink(password=password)
    service.poll()
    service.poll()

    assert alerts(smtp_sink) == [f"jsm-mail: link {service.link.name} is failing",
                                 f"jsm-mail: link {service.link.name} has recovered"]


def test_the_service_smtp_server_carries_alerts_of_a_link_that_cannot_send(service, smtp_sink, mail_account):
    service.settings = service.settings.with_(alert_to=ADMINS, alert_smtp_host=smtp_sink.host,
                                              alert_smtp_port=smtp_sink.port, alert_smtp_security=Security.NONE.value,
                                              alert_from="jsm-mail@example.test")
    service.relink(password=Secret("wrong password"))
    service.poll()
    failing_long_ago(service)

    service.poll()

    [alert] = smtp_sink.messages
    assert alert.mail_from == "jsm-mail@example.test"
    assert alert.message["Subject"] == f"jsm-mail: link {service.link.name} is failing"


def test_an_alert_that_cannot_go_now_goes_after_a_later_round(sending, smtp_sink, mail_account):
    service = sending
    service.settings = service.settings.with_(alert_to=ADMINS)
    service.relink(password=Secret("wrong password"))
    service.poll()
    failing_long_ago(service)
    smtp_sink.data_reply = "451 4.3.0 try later"

    service.poll()
    assert smtp_sink.messages == []
    smtp_sink.data_reply = None
    service.poll()

    assert alerts(smtp_sink) == [f"jsm-mail: link {service.link.name} is failing"]


def test_no_alert_mail_without_admins_to_tell(sending, smtp_sink, mail_account):
    service = sending
    service.relink(password=Secret("wrong password"))
    service.poll()
    failing_long_ago(service)
    service.poll()

    assert smtp_sink.messages == []
