"""Demo mode: a local Maildir with bundled sample mails, linked to the dry-run Jira."""
from __future__ import annotations

import mailbox
from importlib import resources

from plugin.domain import Link, MailProtocol, Secret, Security
from plugin.runtime import Runtime

DEMO_LINK = "demo"
DEMO_ADDRESS = "support@example.com"


def ensure_demo_link(runtime: Runtime) -> Link:
    """The demo link, created with its sample mails on first start."""
    existing = runtime.store.link(DEMO_LINK)
    if existing:
        return existing
    folder = runtime.settings.data_dir / "demo-maildir"
    mailbox.Maildir(folder, create=True).close()
    samples = sorted((p for p in resources.files("plugin.demo_mail").iterdir() if p.name.endswith(".eml")),
                     key=lambda p: p.name)
    for sample in samples:
        # Maildir's own unique names do not sort in arrival order; these do, so the samples are
        # handled in file-name order (a request before its reply).
        (folder / "new" / sample.name.removesuffix(".eml")).write_bytes(sample.read_bytes())
    return runtime.store.add_link(Link(
        id=0, name=DEMO_LINK, protocol=MailProtocol.MAILDIR, host=str(folder), port=0, security=Security.NONE,
        username=DEMO_ADDRESS, password=Secret(""), folder="INBOX", service_desk_id="1", request_type_id="10",
        address=DEMO_ADDRESS))
