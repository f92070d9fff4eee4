"""The link form: every setting of a link, each validated with its reason; the admin pages and the CLI share it."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask_babel import lazy_gettext as _
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    DecimalField,
    Form,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange, Optional, Regexp, ValidationError

from plugin.domain import (
    Access,
    AuthMethod,
    FirstImport,
    Link,
    MailProtocol,
    OAuthSettings,
    Secret,
    Security,
    SmartMatch,
    check_label,
)
from plugin.errors import MailRejected, RetryLater
from plugin.jira.gateway import JiraGateway
from plugin.presets import Preset
from plugin.settings import Settings

MAX_NAME = 100  # the processing log's link_name column
MB = 1024 * 1024
SEALED_TTL_S = 3600  # a password kept in the wizard's page between its steps lasts an hour
# RFC 1035 section 2.3.1 labels (letters, digits, inner hyphens), at least two of them.
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Microsoft Entra tenant and application ids are GUIDs (RFC 9562 section 4 text form).
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
OAUTH_AUTHS = (AuthMethod.OAUTH2_APP.value, AuthMethod.OAUTH2_DELEGATED.value)
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
# Changing these needs a new probe before saving; labels aside, policy and outbound settings do not.
CONNECTION_FIELDS = ("protocol", "host", "port", "security", "folder", "auth", "username", "password",
                     "processed_label", "rejected_label", "oauth")
DEFAULT_PORTS = {(MailProtocol.IMAP, Security.SSL): 993, (MailProtocol.IMAP, Security.STARTTLS): 143,
                 (MailProtocol.IMAP, Security.NONE): 143, (MailProtocol.POP3, Security.SSL): 995,
                 (MailProtocol.POP3, Security.STARTTLS): 110, (MailProtocol.POP3, Security.NONE): 110,
                 (MailProtocol.EWS, Security.SSL): 443, (MailProtocol.GRAPH, Security.SSL): 443}


def domain_name(value: str) -> str:
    """A domain name, kept as typed (lower case); internationalised names are checked as IDNA."""
    name = value.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    if not DOMAIN.match(ascii_name):
        raise ValueError(f"{value!r} is not a domain name such as example.com")
    return name


def checked_link_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME or "/" in name or not name.isprintable():
        raise ValueError(f"{value!r} cannot name a link: use 1 to {MAX_NAME} printable characters without '/'")
    return name


def _check(check: Callable[[str], object]) -> Callable[[Form, Any], None]:
    """A WTForms validator from a check that raises ValueError with its reason."""
    def validate(form: Form, field: Any) -> None:
        if field.data:
            try:
                check(field.data)
            except ValueError as bad:
                raise ValidationError(str(bad)) from None
    return validate


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").replace(",", "\n").splitlines() if line.strip()]


def _domains(form: Form, field: Any) -> None:
    for line in _lines(field.data):
        try:
            domain_name(line)
        except ValueError as bad:
            raise ValidationError(str(bad)) from None


def _choices(enum: Iterable[Any]) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


FIRST_IMPORT_CHOICES = {FirstImport.NEW.value: _("Only mail arriving after linking"),
                        FirstImport.RECENT.value: _("Unread mail of the last days, and everything after linking"),
                        FirstImport.ALL.value: _("All unread mail, however old")}
PORT = [Optional(), NumberRange(1, 65535, message=_("A port is a number from 1 to 65535."))]


class LinkForm(Form):
    """Every setting of a link as the admin types it; `validate()` puts each reason beside its field."""

    name = StringField(_("Name of the link"), [InputRequired(_("Give the link a name.")), _check(checked_link_name)])
    preset = HiddenField()
    protocol = SelectField(_("Protocol"), choices=_choices(MailProtocol))
    host = StringField(_("Server"))
    port = IntegerField(_("Port"), PORT)
    security = SelectField(_("Security"), choices=_choices(Security))
    folder = StringField(_("Folder"), [InputRequired(_("Name the folder to read, e.g. INBOX."))], default="INBOX")
    auth = SelectField(_("Sign-in"), choices=_choices(AuthMethod))
    username = StringField(_("User name"), [InputRequired(_("Give the mailbox's user name."))])
    password = PasswordField(_("Password"))
    password_sealed = HiddenField()
    oauth_provider = HiddenField(default="microsoft")  # whose identity platform the mailbox user signs in with
    tenant_id = StringField(_("Tenant id (directory id or primary domain)"))
    client_id = StringField(_("Application (client) id"))
    client_secret = PasswordField(_("Client secret"))
    client_secret_sealed = HiddenField()
    authority = StringField(_("Sign-in authority"), [
        Optional(), Regexp(r"^https://[^\s/]+", message=_("Give an https:// address."))], default=MICROSOFT_AUTHORITY)
    address = StringField(_("Address of the mailbox"),
                          [Optional(), Regexp(ADDRESS, message=_("Give an address such as support@example.com."))])
    service_desk = SelectField(_("Service desk"), validate_choice=False)
    request_type = SelectField(_("Request type"), validate_choice=False)
    access = RadioField(_("Who may raise requests"), choices=[
        (Access.OPEN.value, _("Anyone who mails the address; new senders become customers")),
        (Access.CUSTOMERS_ONLY.value, _("Only people who are already customers of the service desk"))],
        default=Access.OPEN.value)
    first_import = RadioField(_("Mail already in the mailbox"), choices=list(FIRST_IMPORT_CHOICES.items()),
                              default=FirstImport.NEW.value)
    first_import_days = IntegerField(_("Days"), [Optional(), NumberRange(1, 3650, message=_("From 1 to 3650 days."))],
                                     default=7)
    processed_label = StringField(_("Label of handled mail"), [InputRequired(), _check(check_label)])
    rejected_label = StringField(_("Label of rejected mail"), [InputRequired(), _check(check_label)])
    max_size_mb = DecimalField(_("Largest mail (MB)"), [
        InputRequired(_("Give a size in MB.")), NumberRange(min=0.01, message=_("The size must be more than 0."))])
    smart_match = BooleanField(_("Also thread by subject and shared recipients (smart match)"))
    tracking_token = StringField(_("Tracking token in subjects, e.g. CRM for [CRM:0001234]"), [
        Optional(), Regexp(r"^[A-Za-z0-9]{1,20}$", message=_("Use 1 to 20 letters or digits."))])
    reopen_window_days = IntegerField(_("Replies to requests resolved longer ago than this many days open a new one"),
                                      [InputRequired(), NumberRange(0, 3650, message=_("From 0 to 3650 days."))],
                                      default=14)
    anyone_may_comment = BooleanField(_("Anyone may comment by mail, not only the reporter and participants"))
    allow_missing_to = BooleanField(_("Accept mail with no To and no Cc"))
    allow_autoreply_domains = TextAreaField(_("Domains whose automatic mail is still handled (one a line)"),
                                            [_domains])
    blocked_domains = TextAreaField(_("Domains whose mail is always rejected (one a line)"), [_domains])
    send_replies = BooleanField(_("Mail agents' public comments to customers"))
    from_address = StringField(_("From address"), [
        Optional(), Regexp(ADDRESS, message=_("Give an address such as support@example.com."))])
    from_name = StringField(_("From name, e.g. Example Support"))
    smtp_host = StringField(_("SMTP server"))
    smtp_port = IntegerField(_("SMTP port"), PORT)
    smtp_security = SelectField(_("SMTP security"), choices=_choices(Security), default=Security.STARTTLS.value)
    smtp_username = StringField(_("SMTP user name (default: the mailbox's)"))
    charset = SelectField(_("Charset of mail to customers"), choices=[
        ("utf-8", "UTF-8"), ("iso-2022-jp", _("ISO-2022-JP, for old Japanese mail programs"))], default="utf-8")

    def validate_host(self, field: Any) -> None:
        if not field.data and self.protocol.data != MailProtocol.GRAPH.value:
            raise ValidationError(_("Give the server's name, e.g. imap.example.com."))

    def microsoft_oauth(self) -> bool:
        """Whether the link signs in through a Microsoft app registration, so it needs its tenant and client id."""
        return self.auth.data in OAUTH_AUTHS and self.oauth_provider.data != "google"

    def validate_tenant_id(self, field: Any) -> None:
        value = (field.data or "").strip()
        if not value and self.microsoft_oauth():
            raise ValidationError(_("Give the tenant id of the app registration."))
        if value and not GUID.match(value):
            try:
                domain_name(value)
            except ValueError:
                raise ValidationError(_("A tenant id is a GUID or a domain such as contoso.onmicrosoft.com.")) \
                    from None

    def validate_client_id(self, field: Any) -> None:
        value = (field.data or "").strip()
        if not value and self.microsoft_oauth():
            raise ValidationError(_("Give the application (client) id of the app registration."))
        if value and self.oauth_provider.data != "google" and not GUID.match(value):
            raise ValidationError(_("An application (client) id is a GUID such as "
                                    "11111111-2222-3333-4444-555555555555."))

    def validate_service_desk(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(_("Pick the service desk that gets the requests."))

    def validate_request_type(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(_("Pick the request type of new requests."))

    def errors_as_lines(self) -> list[str]:
        """Each problem as `field: reason`, for the command line."""
        return [f"{name.replace('_', '-')}: {message}" for name, messages in self.errors.items()
                for message in messages]


def new_form_data(preset: Preset, settings: Settings) -> MultiDict[str, str]:
    """A new link's form, prefilled from the provider preset and the service's defaults."""
    data = MultiDict({
        "preset": preset.name, "oauth_provider": "google" if preset.name == "google" else "microsoft",
        "authority": MICROSOFT_AUTHORITY, "protocol": preset.protocol.value, "host": preset.host,
        "port": str(preset.port or ""),
        "security": preset.security.value, "auth": preset.auth.value, "folder": "INBOX",
        "access": Access.OPEN.value, "first_import": FirstImport.NEW.value, "first_import_days": "7",
        "processed_label": settings.processed_label, "rejected_label": settings.rejected_label,
        "max_size_mb": _mb(settings.max_size_bytes), "reopen_window_days": "14", "send_replies": "y",
        "smtp_host": preset.smtp_host, "smtp_port": str(preset.smtp_port or ""),
        "smtp_security": preset.smtp_security.value, "charset": "utf-8"})
    return data


def form_data(link: Link) -> MultiDict[str, str]:
    """A stored link as its form: what the edit page and `links edit` start from (the password stays out)."""
    data = MultiDict({
        "name": link.name, "protocol": link.protocol.value, "host": link.host, "port": str(link.port),
        "security": link.security.value, "folder": link.folder, "auth": link.auth.value,
        "username": link.username, "address": link.address, "service_desk": link.service_desk_id,
        "request_type": link.request_type_id, "access": link.access.value,
        "first_import": link.first_import.value, "first_import_days": str(link.first_import_days),
        "processed_label": link.processed_label, "rejected_label": link.rejected_label,
        "max_size_mb": _mb(link.max_size_bytes), "tracking_token": link.tracking_token or "",
        "reopen_window_days": str(link.reopen_window_days),
        "allow_autoreply_domains": "\n".join(link.autoreply_allow_domains),
        "blocked_domains": "\n".join(link.blocked_domains), "from_address": link.from_address,
        "from_name": link.from_name, "smtp_host": link.smtp_host or "", "smtp_port": str(link.smtp_port or ""),
        "smtp_security": link.smtp_security.value, "smtp_username": link.smtp_username,
        "charset": link.outbound_charset, "oauth_provider": link.oauth.provider, "tenant_id": link.oauth.tenant_id,
        "client_id": link.oauth.client_id, "authority": link.oauth.authority})
    for flag, on in (("smart_match", link.smart_match.enabled), ("anyone_may_comment", link.anyone_may_comment),
                     ("allow_missing_to", not link.require_to), ("send_replies", link.send_replies)):
        if on:
            data[flag] = "y"
    return data


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / MB:g}"


def link_from_form(form: LinkForm, password: Secret, base: Link | None = None,
                   client_secret: Secret | None = None) -> Link:
    """The link the validated form describes; `base` keeps what the form does not show (id, OAuth tokens, ...)."""
    protocol, security = MailProtocol(form.protocol.data), Security(form.security.data)
    auth = AuthMethod(form.auth.data)
    username = form.username.data.strip()
    values: dict[str, Any] = {
        "name": form.name.data.strip(), "protocol": protocol,
        "host": (form.host.data or "").strip() or ("https://graph.microsoft.com" if protocol is MailProtocol.GRAPH
                                                   else ""),
        "port": form.port.data or DEFAULT_PORTS.get((protocol, security), 0), "security": security,
        "username": username, "password": password, "folder": form.folder.data.strip(),
        "service_desk_id": form.service_desk.data, "request_type_id": form.request_type.data,
        "access": Access(form.access.data),
        "address": (form.address.data or "").strip() or (username if "@" in username else ""),
        "auth": auth, "oauth": oauth_from_form(form, client_secret or Secret(""), base, auth),
        "first_import": FirstImport(form.first_import.data),
        "first_import_days": form.first_import_days.data or 7,
        "processed_label": form.processed_label.data, "rejected_label": form.rejected_label.data,
        "max_size_bytes": int(form.max_size_mb.data * MB),
        "tracking_token": form.tracking_token.data or None, "reopen_window_days": form.reopen_window_days.data,
        "anyone_may_comment": form.anyone_may_comment.data, "require_to": not form.allow_missing_to.data,
        "autoreply_allow_domains": tuple(domain_name(d) for d in _lines(form.allow_autoreply_domains.data)),
        "blocked_domains": tuple(domain_name(d) for d in _lines(form.blocked_domains.data)),
        "send_replies": form.send_replies.data, "from_address": (form.from_address.data or "").strip(),
        "from_name": (form.from_name.data or "").strip(), "smtp_host": (form.smtp_host.data or "").strip() or None,
        "smtp_port": form.smtp_port.data or None, "smtp_security": Security(form.smtp_security.data),
        "smtp_username": (form.smtp_username.data or "").strip(), "outbound_charset": form.charset.data}
    if base is None:
        return Link(id=0, smart_match=SmartMatch(enabled=form.smart_match.data), **values)
    return dataclasses.replace(base, smart_match=dataclasses.replace(base.smart_match, enabled=form.smart_match.data),
                               **values)


def oauth_from_form(form: LinkForm, client_secret: Secret, base: Link | None, auth: AuthMethod) -> OAuthSettings:
    """The app registration the form gives; a refresh token stays only while the same client signs in delegated,
    as `links edit` keeps it."""
    before = base.oauth if base else OAuthSettings()
    if form.auth.data not in OAUTH_AUTHS:
        return before
    oauth = dataclasses.replace(
        before, tenant_id=(form.tenant_id.data or "").strip(), client_id=(form.client_id.data or "").strip(),
        client_secret=client_secret or before.client_secret,
        authority=(form.authority.data or "").strip().rstrip("/") or MICROSOFT_AUTHORITY,
        provider="google" if form.oauth_provider.data == "google" else "microsoft")
    if oauth.provider == "google":  # the Google client is the service's own (JSM_MAIL_GOOGLE_CLIENT_ID)
        oauth = dataclasses.replace(oauth, tenant_id=before.tenant_id, client_id=before.client_id,
                                    authority=before.authority)
    if (oauth.client_id, oauth.provider) != (before.client_id, before.provider) or \
            auth is not AuthMethod.OAUTH2_DELEGATED:
        oauth = dataclasses.replace(oauth, refresh_token=Secret(""), refresh_token_expires=None)
    return oauth


def awaiting_sign_in(link: Link) -> bool:
    """A delegated-OAuth link saved disabled until its mailbox user first signs in: it has no token to test with."""
    return not link.enabled and link.auth is AuthMethod.OAUTH2_DELEGATED and not link.oauth.refresh_token


def connection_changed(before: Link, after: Link) -> bool:
    return any(getattr(before, name) != getattr(after, name) for name in CONNECTION_FIELDS)


# Between the wizard's steps the password rides in the page, encrypted with the service's key.

def seal(secret: Secret, settings: Settings) -> str:
    return Fernet(settings.secret_key.reveal().encode("ascii")).encrypt(secret.reveal().encode()).decode("ascii")


def unseal(token: str, settings: Settings) -> Secret:
    """The sealed password; empty when there is none, it is too old or was not sealed by this service."""
    if not token:
        return Secret("")
    try:
        fernet = Fernet(settings.secret_key.reveal().encode("ascii"))
        return Secret(fernet.decrypt(token.encode("ascii"), ttl=SEALED_TTL_S).decode())
    except (InvalidToken, ValueError):
        return Secret("")


# Service desks and request types, by name.

@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    name: str
    problem: str = ""  # why it cannot be picked; "" when it can

    @property
    def label(self) -> str:
        return f"{self.name} ({self.problem})" if self.problem else self.name


def desk_choices(jira: JiraGateway) -> list[Choice]:
    """Every service desk the Jira account can see; RetryLater when Jira cannot say now."""
    return [Choice(desk.id, f"{desk.name} ({desk.project_key})") for desk in jira.service_desks()]


def request_type_choices(jira: JiraGateway, desk_id: str) -> list[Choice]:
    """The desk's request types; those without summary and description cannot take mail, and say so."""
    return [Choice(t.id, t.name, "" if t.email_suitable else str(_("no summary or description field")))
            for t in jira.request_types(desk_id)]


def jira_problem(jira: JiraGateway, desk_id: str, request_type_id: str) -> str | None:
    """Why the desk or request type cannot take mail, or None when it can."""
    try:
        jira.project_key(desk_id)
    except (RetryLater, MailRejected) as exc:
        return str(_("Cannot use service desk %(desk)s: %(why)s", desk=desk_id, why=exc))
    try:
        request_type = jira.request_type(desk_id, request_type_id)
    except (RetryLater, MailRejected) as exc:
        return str(_("Cannot check request type %(type)s in Jira: %(why)s", type=request_type_id, why=exc))
    if not request_type.email_suitable:
        return str(_("Request type %(name)s lacks a summary or description field; pick one that has both.",
                     name=request_type.name))
    return None
