"""Fixtures for outbound mail: the service's link sending through the SMTP sink."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from plugin.domain import Security
from tests.conftest import Service


@pytest.fixture
def sending(service: Service, smtp_sink) -> Service:
    """The test link, sending agents' answers through the SMTP sink as "Example Support"."""
    service.relink(smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security=Security.NONE,
                   from_name="Example Support")
    return service


def received(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]
