"""The live probe before a link is saved or reconnected: reach the server, sign in, open the folder, write a
label on no mail; every failure said in plain words."""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask_babel import gettext as _

from plugin.domain import Link, MailProtocol
from plugin.errors import RetryLater
from plugin.mailboxes import MailboxStore, open_mailbox

log = logging.getLogger(__name__)
REACH_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    message: str


def probe_link(link: Link, *, cafile: str | None = None, store: MailboxStore | None = None) -> ProbeResult:
    """Connect to the link's mailbox as the poll would, and say what worked or what to fix."""
    if link.protocol is not MailProtocol.MAILDIR:
        unreachable = _reach(link)
        if unreachable:
            return ProbeResult(False, unreachable)
    try:
        with open_mailbox(link, cafile=cafile, store=store) as mailbox:
            mailbox.probe()
    except RetryLater as failed:
        return ProbeResult(False, _("The mailbox refused: %(why)s", why=failed.detail))
    except ValueError as bad:
        return ProbeResult(False, _("The settings cannot work: %(why)s", why=bad))
    except Exception:  # a bug or a server answering as no server should: logged for us, said plainly to the admin
        log.exception("probe failed link=%s", link.name)
        return ProbeResult(False, _("The server answered in a way jsm-mail did not expect; check the protocol, "
                                    "port and security, and see the service's log for the details."))
    return ProbeResult(True, _("Signed in, opened the folder %(folder)s and wrote a label on no mail: the mailbox "
                               "is ready.", folder=link.folder))


def _reach(link: Link) -> str | None:
    """Whether anything answers on the server's port within REACH_TIMEOUT_S; a wrong port fails fast here."""
    host, port = _endpoint(link)
    try:
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT_S):
            return None
    except TimeoutError:
        return str(_("The server did not answer on port %(port)s within %(s)s s: check the port.", port=port,
                 s=REACH_TIMEOUT_S))
    except socket.gaierror:
        return str(_("The server name %(host)s was not found: check its spelling.", host=host))
    except ConnectionRefusedError:
        return str(_("The server %(host)s refused the connection on port %(port)s: check the port.", host=host,
                     port=port))
    except OSError as exc:
        return str(_("The server %(host)s cannot be reached on port %(port)s (%(why)s): check the name and port.",
                     host=host, port=port, why=exc.strerror or exc))


def _endpoint(link: Link) -> tuple[str, int]:
    """Host and port to reach: EWS and Graph may be URLs, with the port of their scheme."""
    parts = urlsplit(link.host)
    if parts.scheme in ("http", "https") and parts.hostname:
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    return link.host, link.port
