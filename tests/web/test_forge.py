"""The Forge comment trigger: only a valid Forge Invocation Token gets a mail sent, and only once."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer

from plugin.app import create_app
from plugin.runtime import Runtime
from plugin.settings import FORGE_APP_ID
from plugin.store.outbox import Outbox
from plugin.web.forge import FORGE_ISSUER
from tests.conftest import mail_file

LATENCY_ROUNDS = int(os.environ.get("JSM_MAIL_LATENCY_ROUNDS", "3"))
LATENCY_REPORT = os.environ.get("JSM_MAIL_LATENCY_REPORT")

KID = "forge-test-key"
ENDPOINT = "/forge/events/comment-created"


@dataclass
class ForgeKeys:
    """A signing key whose public half a JWKS endpoint on loopback serves, as Atlassian's CDN does."""

    jwks_url: str
    private_key: rsa.RSAPrivateKey

    def token(self, *, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": FORGE_ISSUER, "aud": FORGE_APP_ID, "iat": now, "nbf": now - 5, "exp": now + 300,
                "app": {"id": FORGE_APP_ID, "installationId": "ari:cloud:ecosystem::installation/1"}} | claims
        return jwt.encode(body, key or self.private_key, algorithm="RS256", headers={"kid": KID})


@contextmanager
def serving_forge_keys() -> Iterator[ForgeKeys]:
    """A fresh key pair, its JWKS served on loopback while the block runs."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key())) | {
        "kid": KID, "use": "sig", "alg": "RS256"}
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/.well-known/jwks.json").respond_with_json({"keys": [jwk]})
    server.start()
    try:
        yield ForgeKeys(server.url_for("/.well-known/jwks.json"), private_key)
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def forge_keys() -> Iterator[ForgeKeys]:
    with serving_forge_keys() as keys:
        yield keys


@pytest.fixture
def forge(sending, forge_keys):
    sending.settings = dataclasses.replace(sending.settings, forge_jwks_url=forge_keys.jwks_url)
    app = create_app(Runtime(sending.settings, store=sending.store, jira=sending.jira))
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def answered(sending, mail_account, fake_jira):
    """A request raised by mail and an agent's public answer on it, not yet polled."""
    mail_account.append(mail_file("request_plain.eml"))
    sending.poll()
    [request] = fake_jira.requests
    comment = fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")
    return request, comment


def event(request, comment) -> dict:
    """The avi:jira:commented:issue payload, trimmed to what Forge always sends."""
    return {"eventType": "avi:jira:commented:issue", "atlassianId": comment.author.account_id,
            "issue": {"id": request.id, "key": request.key}, "comment": {"id": comment.id}}


def test_valid_trigger_mails_the_comment_at_once_and_a_retry_sends_nothing_more(forge, forge_keys, answered,
                                                                                 smtp_sink):
    request, comment = answered
    headers = {"Authorization": f"Bearer {forge_keys.token()}"}

    first = forge.post(ENDPOINT, json=event(request, comment), headers=headers)
    again = forge.post(ENDPOINT, json=event(request, comment), headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json["result"] == "queued; sent"
    assert again.json["result"] == "queued before; sent"
    [delivered] = smtp_sink.messages
    assert delivered.message["Subject"] == f"[{request.key}] VPN drops every hour"
    [entry] = Outbox(forge.application.extensions["jsm_mail"].store).entries()
    assert (entry.source, entry.state) == ("forge", "sent")


@pytest.mark.parametrize("how", ["forged", "expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "missing",
                                 "hs256"])
def test_a_call_without_a_valid_token_gets_401_and_sends_nothing(forge, forge_keys, answered, smtp_sink, how):
    request, comment = answered
    now = int(time.time())
    tokens = {
        "forged": lambda: forge_keys.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "expired": lambda: forge_keys.token(iat=now - 600, nbf=now - 600, exp=now - 60),
        "not-yet-valid": lambda: forge_keys.token(nbf=now + 600, exp=now + 900),
        "wrong-audience": lambda: forge_keys.token(aud="ari:cloud:ecosystem::app/someone-else"),
        "wrong-issuer": lambda: forge_keys.token(iss="someone"),
        "missing": lambda: None,
        "hs256": lambda: jwt.encode({"iss": FORGE_ISSUER, "aud": FORGE_APP_ID, "exp": now + 300}, "secret" * 6,
                                    algorithm="HS256", headers={"kid": KID}),
    }
    token = tokens[how]()
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    response = forge.post(ENDPOINT, json=event(request, comment), headers=headers)

    assert response.status_code == 401
    assert smtp_sink.messages == []
    assert Outbox(forge.application.extensions["jsm_mail"].store).entries() == []


def test_internal_comment_from_the_trigger_is_not_mailed(forge, forge_keys, answered, fake_jira, smtp_sink):
    request, _ = answered
    internal = fake_jira.add_agent_comment(request.key, "note for agents", public=False)

    response = forge.post(ENDPOINT, json=event(request, internal),
                          headers={"Authorization": f"Bearer {forge_keys.token()}"})

    assert response.status_code == 200 and response.json["result"] == "internal comment: never mailed"
    assert smtp_sink.messages == []


def test_a_comment_the_trigger_sent_is_not_sent_again_by_polling(forge, forge_keys, answered, sending, smtp_sink):
    request, comment = answered
    forge.post(ENDPOINT, json=event(request, comment), headers={"Authorization": f"Bearer {forge_keys.token()}"})

    sending.poll()

    assert len(smtp_sink.messages) == 1


def test_each_comment_is_mailed_at_once_by_trigger_or_in_the_next_round_by_polling(
        forge, forge_keys, answered, sending, fake_jira, smtp_sink):
    request, _ = answered
    sending.relink(max_mails_per_minute=100)
    sending.poll()  # the answer the fixture wrote
    headers = {"Authorization": f"Bearer {forge_keys.token()}"}
    by_trigger, by_poll = [], []
    for n in range(LATENCY_ROUNDS):
        comment = fake_jira.add_agent_comment(request.key, f"answer {n} by trigger")
        started = time.perf_counter()
        forge.post(ENDPOINT, json=event(request, comment), headers=headers)
        by_trigger.append(time.perf_counter() - started)
        assert len(smtp_sink.messages) == 2 * n + 2
        fake_jira.add_agent_comment(request.key, f"answer {n} by polling")
        started = time.perf_counter()
        sending.poll()
        by_poll.append(time.perf_counter() - started)
        assert len(smtp_sink.messages) == 2 * n + 3
    if LATENCY_REPORT:  # benchmarks/outbound_latency.py reads the seconds; no test bounds them
        Path(LATENCY_REPORT).write_text(json.dumps({"trigger_s": by_trigger, "poll_round_s": by_poll}))

