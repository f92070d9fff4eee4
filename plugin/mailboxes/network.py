"""What every mailbox protocol shares: timeouts, retry delays, and network errors in plain words."""
from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from plugin.domain import Link
from plugin.errors import RetryLater

TIMEOUT_S = 30.0
RETRY_AFTER_S = 60.0
# A wrong password or an untrusted certificate needs the admin; retrying soon only risks a lockout.
RETRY_AFTER_CONFIG_S = 300.0


def withhold_password(text: str, link: Link) -> str:
    """A server's reply for the logs, unless it would show the password."""
    password = link.password.reveal()
    return "reply withheld: it contains the password" if password and password in text else text


@contextmanager
def network_errors_as_retry(link: Link, action: str) -> Iterator[None]:
    """Turn socket and TLS errors into RetryLater with a plain-language detail."""
    where = f"{link.host}:{link.port}"
    failed = f"could not {action}:"
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        detail = f"{failed} the certificate of {where} is not trusted ({exc.verify_message})"
        raise RetryLater(detail, RETRY_AFTER_CONFIG_S) from exc
    except ssl.SSLError as exc:
        detail = f"{failed} TLS with {where} failed ({exc.reason or exc}); check the security setting and port"
        raise RetryLater(detail, RETRY_AFTER_CONFIG_S) from exc
    except socket.gaierror as exc:
        raise RetryLater(f"{failed} the host name {link.host} was not found", RETRY_AFTER_S) from exc
    except ConnectionRefusedError as exc:
        raise RetryLater(f"{failed} {where} refused the connection; is the port right?", RETRY_AFTER_S) from exc
    except TimeoutError as exc:
        raise RetryLater(f"{failed} {where} did not answer within {TIMEOUT_S:.0f} s", RETRY_AFTER_S) from exc
    except OSError as exc:
        raise RetryLater(f"{failed} network error with {where} ({exc.strerror or exc})", RETRY_AFTER_S) from exc


class PinnedCaAdapter(requests.adapters.HTTPAdapter):
    """Verifies TLS against one CA file; requests lets REQUESTS_CA_BUNDLE win over Session.verify."""

    def __init__(self, cafile: str) -> None:
        super().__init__()
        self.cafile = cafile

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        return super().send(request, stream=stream, timeout=timeout, verify=self.cafile if verify else False,
                            cert=cert, proxies=proxies)


def http_session(cafile: str | None) -> requests.Session:
    """A requests session for a REST mailbox or token endpoint; `cafile` pins the server certificate."""
    session = requests.Session()
    if cafile:
        session.mount("https://", PinnedCaAdapter(cafile))
    return session
