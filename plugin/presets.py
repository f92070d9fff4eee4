"""Mail providers a link can start from: the server settings each one needs, shared by the wizard and the CLI."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _

from plugin.domain import AuthMethod, MailProtocol, Security


@dataclass(frozen=True, slots=True)
class Preset:
    """Server settings prefilled for one provider; the admin can still change each of them."""

    name: str  # stable, for `links add --preset NAME`
    title: object  # shown to the admin (a lazy translation)
    protocol: MailProtocol
    host: str
    port: int
    security: Security
    auth: AuthMethod
    smtp_host: str = ""
    smtp_port: int | None = None
    smtp_security: Security = Security.STARTTLS
    oauth: bool = False  # sign-in goes through the provider's OAuth: the sign-in block replaces the password
    hint: object = ""


# Host names and ports from the providers' own pages: Microsoft "POP, IMAP, and SMTP settings for Outlook.com"
# and Exchange Online (outlook.office365.com:993, smtp.office365.com:587), Google "Check Gmail through other
# email platforms" (imap.gmail.com:993, smtp.gmail.com:587), Microsoft Graph (graph.microsoft.com).
PRESETS: tuple[Preset, ...] = (
    Preset("microsoft365-graph", _("Microsoft 365 (Microsoft Graph)"), MailProtocol.GRAPH,
           "https://graph.microsoft.com", 443, Security.SSL, AuthMethod.OAUTH2_APP, oauth=True,
           hint=_("Reads and sends through Microsoft Graph with an app registration; no SMTP server needed.")),
    Preset("microsoft365-imap", _("Microsoft 365 (IMAP and SMTP with OAuth)"), MailProtocol.IMAP,
           "outlook.office365.com", 993, Security.SSL, AuthMethod.OAUTH2_DELEGATED,
           smtp_host="smtp.office365.com", smtp_port=587, smtp_security=Security.STARTTLS, oauth=True,
           hint=_("Microsoft turned off password sign-in for Exchange Online: the mailbox user signs in once.")),
    Preset("google", _("Google Workspace or Gmail (IMAP and SMTP with OAuth)"), MailProtocol.IMAP,
           "imap.gmail.com", 993, Security.SSL, AuthMethod.OAUTH2_DELEGATED,
           smtp_host="smtp.gmail.com", smtp_port=587, smtp_security=Security.STARTTLS, oauth=True,
           hint=_("Google accepts OAuth sign-in (or an app password where the account allows one).")),
    Preset("imap", _("Other IMAP server"), MailProtocol.IMAP, "", 993, Security.SSL, AuthMethod.PASSWORD,
           smtp_port=587, smtp_security=Security.STARTTLS,
           hint=_("Any IMAP server: handled mail gets a label and is marked read.")),
    Preset("pop3", _("POP3 server"), MailProtocol.POP3, "", 995, Security.SSL, AuthMethod.PASSWORD,
           smtp_port=587, smtp_security=Security.STARTTLS,
           hint=_("POP3 has no labels: handled mail is deleted from the server, rejected mail stays.")),
    Preset("exchange", _("Exchange Server on-premises (EWS)"), MailProtocol.EWS, "", 443, Security.SSL,
           AuthMethod.NTLM, hint=_("Exchange Web Services with the mailbox user's Windows sign-in (NTLM).")),
)

# Demo mode only: the folder of sample mails the service prepares (plugin/demo.py), read as a Maildir.
DEMO = Preset("demo", _("Demo mailbox (sample mails in a local folder)"), MailProtocol.MAILDIR, "", 0,
              Security.NONE, AuthMethod.PASSWORD,
              hint=_("Sample mails (a Japanese request, its reply, an out-of-office reply, HTML with Cc) handled "
                     "against the dry-run Jira: nothing is sent anywhere."))


def presets_for(demo: bool) -> tuple[Preset, ...]:
    return (DEMO, *PRESETS) if demo else PRESETS


def preset(name: str, *, demo: bool = False) -> Preset | None:
    return next((p for p in presets_for(demo) if p.name == name), None)
