"""Demo mode: a local Maildir with bundled sample mails, for the admin to link to the dry-run Jira."""
from __future__ import annotations

import mailbox
from importlib import resources
from pathlib import Path

from plugin.domain import FirstImport
from plugin.settings import Settings

DEMO_LINK = "demo"
DEMO_ADDRESS = "support@example.com"


def demo_folder(settings: Settings) -> Path:
    return settings.data_dir / "demo-maildir"


def prepare_demo_mailbox(settings: Settings) -> Path:
    """The folder of sample mails, filled on first start; linking it is the admin's first step."""
    folder = demo_folder(settings)
    if folder.is_dir():
        return folder
    mailbox.Maildir(folder, create=True).close()
    samples = sorted((p for p in resources.files("plugin.demo_mail").iterdir() if p.name.endswith(".eml")),
                     key=lambda p: p.name)
    for sample in samples:
        # Maildir's own unique names do not sort in arrival order; these do, so the samples are
        # handled in file-name order (a request before its reply).
        (folder / "new" / sample.name.removesuffix(".eml")).write_bytes(sample.read_bytes())
    return folder


def demo_form_data(settings: Settings) -> dict[str, str]:
    """The wizard's values for the demo mailbox: the sample folder on the dry-run Jira's desk, all its mail."""
    return {"name": DEMO_LINK, "host": str(demo_folder(settings)), "username": DEMO_ADDRESS,
            "address": DEMO_ADDRESS, "service_desk": "1", "request_type": "10",
            "first_import": FirstImport.ALL.value, "send_replies": ""}
