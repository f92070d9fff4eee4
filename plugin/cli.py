"""The `jsm-mail` command line: serve, poll, inspect, replay, links, logs, quarantine."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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
from plugin.inspect import inspect_file
from plugin.link_form import DEFAULT_PORTS, checked_link_name, domain_name
from plugin.log_csv import csv_chunks
from plugin.log_query import LogQuery, every, page, parse_when
from plugin.log_setup import configure_logging
from plugin.mailboxes.oauth import expiry_warnings
from plugin.presets import PRESETS
from plugin.runtime import Runtime
from plugin.settings import Settings, SettingsError

# sysexits.h EX_TEMPFAIL: a mailbox could not be reached, logged in to or its folder opened; try again later.
EXIT_MAILBOX_UNREACHABLE = 75
# Shown escaped in text output: a mail's own escape sequences must not drive the admin's terminal.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def fail(message: str) -> int:
    print(f"jsm-mail: {message}", file=sys.stderr)
    return 2


def port_number(value: str) -> int:
    """argparse type: a TCP port."""
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1 to 65535)")
    return int(value)


def positive_number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be more than 0")
    return number


def whole_number(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 0 to 999999999")
    return int(value)


def point_in_time(value: str) -> datetime:
    try:
        return parse_when(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def label(value: str) -> str:
    try:
        check_label(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def domain(value: str) -> str:
    """argparse type: a domain name, kept as typed (lower case); internationalised names are checked as IDNA."""
    try:
        return domain_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def link_name(value: str) -> str:
    try:
        return checked_link_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_inspect(args: argparse.Namespace, runtime: Runtime | None) -> int:
    for name in args.files:
        result = inspect_file(Path(name))
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(f"{name}: {result['kind']}  {result['subject']!r}  from={(result['from'] or {}).get('address')}"
                  f"  reason={result['reason']}")
    return 0


def apply_preset(args: argparse.Namespace) -> str | None:
    """Fill what `--preset` knows into the options not given; returns what is still missing, if anything."""
    from plugin.presets import preset
    chosen = preset(args.preset) if args.preset else None
    if chosen:
        args.protocol = args.protocol or chosen.protocol.value
        args.host = args.host or chosen.host or None
        args.security = args.security or chosen.security.value
        args.port = args.port or (chosen.port if args.security == chosen.security.value else None)
        args.auth = args.auth or chosen.auth.value
        args.smtp_host = args.smtp_host or chosen.smtp_host or None
        args.smtp_security = args.smtp_security or chosen.smtp_security.value
        args.smtp_port = args.smtp_port or (chosen.smtp_port if args.smtp_security == chosen.smtp_security.value
                                            else None)
    args.security = args.security or Security.SSL.value
    args.smtp_security = args.smtp_security or Security.STARTTLS.value
    return None if args.protocol else "give --protocol or --preset"


def cmd_links_add(args: argparse.Namespace, runtime: Runtime) -> int:
    missing = apply_preset(args)
    if missing:
        return fail(missing)
    password = os.environ.get(args.password_env) if args.password_env else ""
    if args.password_env and password is None:
        return fail(f"environment variable {args.password_env} is not set")
    smtp_password = os.environ.get(args.smtp_password_env) if args.smtp_password_env else None
    if args.smtp_password_env and smtp_password is None:
        return fail(f"environment variable {args.smtp_password_env} is not set")
    protocol, security = MailProtocol(args.protocol), Security(args.security)
    auth = AuthMethod(args.auth) if args.auth else (
        AuthMethod.OAUTH2_APP if protocol is MailProtocol.GRAPH else AuthMethod.PASSWORD)
    try:
        oauth = oauth_settings(args)
    except ValueError as bad:
        return fail(str(bad))
    if protocol is MailProtocol.GRAPH and auth is not AuthMethod.OAUTH2_APP:
        return fail("graph links sign in app-only: give --tenant-id, --client-id and --client-secret-env")
    if auth is AuthMethod.OAUTH2_APP and not (oauth.tenant_id and oauth.client_id and
                                              (oauth.client_secret or oauth.certificate_path)):
        return fail("app-only sign-in needs --tenant-id, --client-id and --client-secret-env or --client-certificate")
    if not args.host and protocol is not MailProtocol.GRAPH:
        return fail("--host is required")
    if runtime.store.link(args.name):
        return fail(f"a link named {args.name!r} exists already")
    settings = runtime.settings
    max_size_bytes = int(args.max_size_mb * 1024 * 1024) if args.max_size_mb else settings.max_size_bytes
    link = Link(
        id=0, name=args.name, protocol=protocol, host=args.host or "https://graph.microsoft.com",
        port=args.port or DEFAULT_PORTS.get((protocol, security), 0), security=security, username=args.username,
        password=Secret(password or ""), folder=args.folder, service_desk_id=args.service_desk,
        request_type_id=args.request_type, access=Access(args.access),
        address=args.address or (args.username if "@" in args.username else ""),
        smtp_host=args.smtp_host, smtp_port=args.smtp_port, smtp_security=Security(args.smtp_security),
        processed_label=args.processed_label or settings.processed_label,
        rejected_label=args.rejected_label or settings.rejected_label,
        max_size_bytes=max_size_bytes, require_to=not args.allow_missing_to,
        anyone_may_comment=args.anyone_may_comment, tracking_token=args.tracking_token,
        reopen_window_days=args.reopen_window_days, smart_match=SmartMatch(enabled=args.smart_match),
        autoreply_allow_domains=tuple(args.allow_autoreply_domain), blocked_domains=tuple(args.block_domain),
        send_replies=not args.no_replies, from_address=args.from_address or "", from_name=args.from_name or "",
        aliases=tuple(args.alias), smtp_username=args.smtp_username or "", sent_folder=args.sent_folder or "",
        subject_style=args.subject_style, outbound_charset=args.charset,
        max_attachment_bytes=int(args.max_attachment_mb * 1024 * 1024),
        max_mails_per_minute=args.max_mails_per_minute, intake_per_minute=args.intake_per_minute,
        auth=auth, oauth=oauth, first_import=FirstImport(args.first_import), first_import_days=args.first_import_days)
    problem = request_type_problem(runtime, link)
    if problem:
        return fail(problem)
    link = runtime.store.add_link(link)
    if smtp_password:
        from plugin.store.outbox import Outbox
        Outbox(runtime.store).set_smtp_password(link.id, Secret(smtp_password))
    print(f"link {link.name} added (id {link.id})")
    return 0


def oauth_settings(args: argparse.Namespace) -> OAuthSettings:
    """The app registration from `links add` options; the client secret is read from the environment."""
    secret = ""
    if args.client_secret_env:
        secret = os.environ.get(args.client_secret_env) or ""
        if not secret:
            raise ValueError(f"environment variable {args.client_secret_env} is not set")
    expires = date.fromisoformat(args.client_secret_expires) if args.client_secret_expires else None
    return OAuthSettings(tenant_id=args.tenant_id or "", client_id=args.client_id or "", client_secret=Secret(secret),
                         certificate_path=args.client_certificate or "",
                         authority=args.authority or "https://login.microsoftonline.com", client_secret_expires=expires)


def request_type_problem(runtime: Runtime, link: Link) -> str | None:
    """Why the link's service desk or request type cannot take mail, or None when it can."""
    try:
        runtime.jira.project_key(link.service_desk_id)
    except (RetryLater, MailRejected) as exc:
        return f"cannot use service desk {link.service_desk_id}: {exc}"
    try:
        request_type = runtime.jira.request_type(link.service_desk_id, link.request_type_id)
    except (RetryLater, MailRejected) as exc:
        return f"cannot check request type {link.request_type_id} in Jira: {exc}"
    if not request_type.email_suitable:
        return (f"request type {request_type.name!r} lacks a summary or description field; "
                "pick one that has both")
    return None


def link_json(link: Link) -> dict:
    return {"id": link.id, "name": link.name, "protocol": link.protocol.value, "host": link.host,
            "port": link.port, "security": link.security.value, "username": link.username,
            "folder": link.folder, "address": link.address, "service_desk_id": link.service_desk_id,
            "request_type_id": link.request_type_id, "access": link.access.value,
            "processed_label": link.processed_label, "rejected_label": link.rejected_label,
            "max_size_bytes": link.max_size_bytes, "smart_match": link.smart_match.enabled,
            "enabled": link.enabled, "send_replies": link.send_replies, "smtp_host": link.smtp_host,
            "smtp_port": link.smtp_port, "smtp_security": link.smtp_security.value,
            "from_address": link.from_address or link.address, "from_name": link.from_name,
            "sent_folder": link.sent_folder, "subject_style": link.subject_style,
            "charset": link.outbound_charset,
            "auth": link.auth.value,
            "client_secret_expires": _iso(link.oauth.client_secret_expires),
            "refresh_token_expires": _iso(link.oauth.refresh_token_expires),
            "warnings": expiry_warnings(link.oauth, datetime.now(UTC).date())}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def cmd_links_list(args: argparse.Namespace, runtime: Runtime) -> int:
    from plugin.link_status import link_status
    links = runtime.store.links()
    if args.json:
        print(json.dumps([link_json(link) | {"status": link_status(runtime.store, link).as_json()} for link in links],
                         ensure_ascii=False))
        return 0
    for link in links:
        print(f"{link.name}: {link.protocol.value}://{link.username}@{link.host}:{link.port}/{link.folder} "
              f"-> service desk {link.service_desk_id}, request type {link.request_type_id} ({link.access.value})"
              f"; sign-in {link.auth.value}{_expiries(link)}")
        for warning in expiry_warnings(link.oauth, datetime.now(UTC).date()):
            print(f"  WARNING {link.name}: {warning}")
        for line in link_status(runtime.store, link).lines():
            print(f"  {CONTROL_CHARACTERS.sub(lambda m: repr(m.group())[1:-1], line)}")
    return 0


def _expiries(link: Link) -> str:
    parts = [f"{label} expires {day.isoformat()}" for label, day in
             (("client secret", link.oauth.client_secret_expires), ("refresh token", link.oauth.refresh_token_expires))
             if day]
    return f" ({', '.join(parts)})" if parts else ""


def cmd_links_auth(args: argparse.Namespace, runtime: Runtime) -> int:
    """Device-code sign-in as the mailbox user: prints Microsoft's code and URL, waits, stores the refresh token."""
    from plugin.mailboxes.oauth import device_code_sign_in, scopes_for
    link = runtime.store.link(args.name)
    if link is None:
        return fail(f"no link named {args.name!r}")
    if not (link.oauth.tenant_id and link.oauth.client_id):
        return fail(f"link {link.name} has no --tenant-id and --client-id to sign in with")
    try:
        oauth = device_code_sign_in(link, scopes_for(link), lambda text: print(text, flush=True),
                                    cafile=runtime.settings.ca_file)
    except RetryLater as refused:
        return fail(f"sign-in failed: {refused.detail}")
    runtime.store.update_link(dataclasses.replace(link, auth=AuthMethod.OAUTH2_DELEGATED, oauth=oauth))
    expires = f"; the refresh token lasts until {oauth.refresh_token_expires}" if oauth.refresh_token_expires else ""
    print(f"link {link.name} signed in{expires}")
    return 0


def cmd_links_switch(args: argparse.Namespace, runtime: Runtime) -> int:
    """Move a link to a new sign-in or protocol in place: probe it live first; the old one works until then.

    The link keeps its id, so its mail ledger, threading index and labels carry over: mail the old
    sign-in handled is not handled again, mail that arrives meanwhile is handled once by either.
    """
    from plugin.mailboxes import open_mailbox
    from plugin.mailboxes.oauth import device_code_sign_in, scopes_for
    link = runtime.store.link(args.name)
    if link is None:
        return fail(f"no link named {args.name!r}")
    try:
        candidate = switched_link(link, args)
    except ValueError as bad:
        return fail(str(bad))
    try:
        if candidate.auth is AuthMethod.OAUTH2_DELEGATED and not candidate.oauth.refresh_token:
            oauth = device_code_sign_in(candidate, scopes_for(candidate), lambda text: print(text, flush=True),
                                        cafile=runtime.settings.ca_file)
            candidate = dataclasses.replace(candidate, oauth=oauth)
        with open_mailbox(candidate, cafile=runtime.settings.ca_file) as mailbox:
            mailbox.probe()
    except RetryLater as refused:
        return fail(f"the new sign-in failed its probe, {link.name} keeps the old one: {refused.detail}")
    runtime.store.update_link(candidate)
    print(f"link {link.name} switched to {candidate.protocol.value} with {candidate.auth.value} sign-in "
          "(login, folder and a label write probed)")
    return 0


def switched_link(link: Link, args: argparse.Namespace) -> Link:
    """The link with the protocol, server and sign-in options given; the rest (labels, policy) unchanged."""
    protocol = MailProtocol(args.protocol) if args.protocol else link.protocol
    security = Security(args.security) if args.security else link.security
    moved = (protocol, security) != (link.protocol, link.security)
    auth = AuthMethod(args.auth) if args.auth else (
        AuthMethod.OAUTH2_APP if protocol is MailProtocol.GRAPH else link.auth)
    password = link.password
    if args.password_env:
        password = Secret(os.environ.get(args.password_env) or "")
        if not password:
            raise ValueError(f"environment variable {args.password_env} is not set")
    given = oauth_settings(args)
    oauth = dataclasses.replace(
        link.oauth, **{name: getattr(given, name) for name in ("tenant_id", "client_id", "client_secret",
                                                                 "certificate_path", "client_secret_expires")
                       if getattr(given, name)})
    if args.authority:
        oauth = dataclasses.replace(oauth, authority=args.authority)
    if oauth.client_id != link.oauth.client_id or auth is not AuthMethod.OAUTH2_DELEGATED:
        oauth = dataclasses.replace(oauth, refresh_token=Secret(""), refresh_token_expires=None)
    if auth is AuthMethod.OAUTH2_APP and not (oauth.tenant_id and oauth.client_id and
                                              (oauth.client_secret or oauth.certificate_path)):
        raise ValueError("app-only sign-in needs --tenant-id, --client-id and --client-secret-env or "
                         "--client-certificate")
    if protocol is MailProtocol.GRAPH and auth is not AuthMethod.OAUTH2_APP:
        raise ValueError("graph links sign in app-only")
    host = args.host or ("https://graph.microsoft.com" if protocol is MailProtocol.GRAPH and moved else link.host)
    port = args.port or (DEFAULT_PORTS.get((protocol, security), link.port) if moved else link.port)
    return dataclasses.replace(link, protocol=protocol, security=security, host=host, port=port,
                               username=args.username or link.username, password=password, auth=auth, oauth=oauth)


# `links edit` option -> field of the link form the admin pages use; the form validates both the same way.
EDIT_FIELDS = {"new_name": "name", "host": "host", "port": "port", "security": "security", "folder": "folder",
               "username": "username", "address": "address", "service_desk": "service_desk",
               "request_type": "request_type", "access": "access", "first_import": "first_import",
               "first_import_days": "first_import_days", "processed_label": "processed_label",
               "rejected_label": "rejected_label", "max_size_mb": "max_size_mb", "tracking_token": "tracking_token",
               "reopen_window_days": "reopen_window_days", "from_address": "from_address", "from_name": "from_name",
               "smtp_host": "smtp_host", "smtp_port": "smtp_port", "smtp_security": "smtp_security",
               "smtp_username": "smtp_username", "charset": "charset"}
EDIT_FLAGS = {"smart_match": "smart_match", "anyone_may_comment": "anyone_may_comment",
              "allow_missing_to": "allow_missing_to", "replies": "send_replies"}


def cmd_links_edit(args: argparse.Namespace, runtime: Runtime) -> int:
    """Change a link's settings through the admin pages' form: same checks, same probe before saving."""
    from plugin.link_form import LinkForm, connection_changed, form_data, jira_problem, link_from_form
    from plugin.link_probe import probe_link
    link = runtime.store.link(args.name)
    if link is None:
        return fail(f"no link named {args.name!r}")
    data = form_data(link)
    for option, name in EDIT_FIELDS.items():
        if getattr(args, option) is not None:
            data[name] = getattr(args, option)
    for option, name in EDIT_FLAGS.items():
        wanted = getattr(args, option)
        if wanted is not None:
            data.pop(name, None)
            if wanted:
                data[name] = "y"
    for option, name in (("allow_autoreply_domain", "allow_autoreply_domains"), ("block_domain", "blocked_domains")):
        if getattr(args, option) is not None:
            data[name] = "\n".join(getattr(args, option))
    password = link.password
    if args.password_env:
        password = Secret(os.environ.get(args.password_env) or "")
        if not password:
            return fail(f"environment variable {args.password_env} is not set")
    form = LinkForm(data)
    if not form.validate():
        for line in form.errors_as_lines():
            print(f"jsm-mail: --{line}", file=sys.stderr)
        return 2
    if form.name.data.strip() != link.name and runtime.store.link(form.name.data.strip()):
        return fail(f"a link named {form.name.data.strip()!r} exists already")
    changed = link_from_form(form, password, base=link)
    if connection_changed(link, changed):
        probe = probe_link(changed, cafile=runtime.settings.ca_file, store=runtime.store)
        if not probe.ok:
            return fail(f"not saved: {probe.message}")
        print(probe.message)
    if (changed.service_desk_id, changed.request_type_id) != (link.service_desk_id, link.request_type_id):
        problem = jira_problem(runtime.jira, changed.service_desk_id, changed.request_type_id)
        if problem:
            return fail(f"not saved: {problem}")
    runtime.store.update_link(changed)
    print(f"link {changed.name} saved")
    return 0


def cmd_links_enable(args: argparse.Namespace, runtime: Runtime) -> int:
    enabled = args.links_command == "enable"
    if not runtime.store.set_link_enabled(args.name, enabled):
        return fail(f"no link named {args.name!r}")
    print(f"link {args.name} {'enabled: it is polled again' if enabled else 'disabled: it is not polled'}")
    return 0


def cmd_links_test_mail(args: argparse.Namespace, runtime: Runtime) -> int:
    """Send the link's test mail to its own address, as the admin pages' button does."""
    from plugin.link_test_mail import send_test_mail
    from plugin.outbound.send import MailRefused, can_send
    from plugin.store.outbox import Outbox
    link = runtime.store.link(args.name)
    if link is None:
        return fail(f"no link named {args.name!r}")
    if not (link.address and can_send(link)):
        return fail(f"link {link.name} sends no mail to its own address: give it --address and an SMTP server")
    try:
        message_id, _ = send_test_mail(link, runtime.settings, Outbox(runtime.store).smtp_password(link.id))
    except (RetryLater, MailRefused) as failed:
        return fail(f"the test mail could not be sent: {failed.detail}")
    print(f"test mail sent to {link.address} (Message-ID {message_id}); after the next poll "
          f"`jsm-mail logs --link {link.name} --search {message_id}` shows \"test mail received\"")
    return 0


def cmd_links_remove(args: argparse.Namespace, runtime: Runtime) -> int:
    if not runtime.store.delete_link(args.name):
        return fail(f"no link named {args.name!r}")
    print(f"link {args.name} removed")
    return 0


def cmd_links_test(args: argparse.Namespace, runtime: Runtime) -> int:
    from plugin.link_check import check_link
    link = runtime.store.link(args.name)
    if link is None:
        return fail(f"no link named {args.name!r}")
    result = check_link(link, runtime)
    for line in result.lines:
        print(line)
    return 0 if result.ok else 1


def cmd_request_types(args: argparse.Namespace, runtime: Runtime) -> int:
    try:
        request_types = runtime.jira.request_types(args.service_desk)
    except (RetryLater, MailRejected) as exc:
        return fail(f"cannot list request types: {exc}")
    for request_type in request_types:
        verdict = "takes mail" if request_type.email_suitable else "no summary or description field: cannot take mail"
        print(f"{request_type.id:>6}  {request_type.name}  ({verdict})")
    return 0


def cmd_poll(args: argparse.Namespace, runtime: Runtime) -> int:
    from plugin.poll import poll_links
    if args.link and runtime.store.link(args.link) is None:
        return fail(f"no link named {args.link!r}")
    from plugin.progress import ProgressLine
    progress = ProgressLine(redraw=None if runtime.settings.log_format == "text" else False)
    while True:
        reports = poll_links(runtime.settings, runtime.store, runtime.jira, args.link, progress)
        progress.finish()
        for report in reports:
            print(f"{report.link}: mailbox not reached: {report.error}" if report.unreachable else report, flush=True)
        if args.once:
            return EXIT_MAILBOX_UNREACHABLE if any(r.unreachable for r in reports) else 0
        waits = [r.retry_after_s for r in reports if r.retry_after_s] + [runtime.settings.poll_interval_s]
        time.sleep(max(waits))


def cmd_logs(args: argparse.Namespace, runtime: Runtime) -> int:
    query = LogQuery(link=args.link, text=args.search, since=args.since, until=args.until)
    if args.limit:  # the newest N, shown oldest first as a log reads
        entries = [row.entry for row in reversed(page(runtime.store, query, offset=0, limit=args.limit))]
    else:
        entries = list(every(runtime.store, query))
    if args.json:
        from plugin.outbound.log import with_direction
        for row in with_direction(runtime.store, [entry.as_json() for entry in entries]):
            print(json.dumps(row, ensure_ascii=False))
    elif args.csv:
        sys.stdout.writelines(csv_chunks(entries, bom=False))
    else:
        for e in entries:
            what = e.issue_key or e.reason or ""
            line = (f"{e.time:%Y-%m-%d %H:%M:%S} {e.link} {e.outcome:15s} {what:12s} {e.sender or '-'} "
                    f"{e.subject or ''!r}: {e.detail}" + (f" [{e.evidence}]" if e.evidence else ""))
            print(CONTROL_CHARACTERS.sub(lambda m: repr(m.group())[1:-1], line))
    return 0


def cmd_replay(args: argparse.Namespace, runtime: Runtime) -> int:
    from plugin.replay import replay_file
    link = runtime.store.link(args.link)
    if link is None:
        return fail(f"no link named {args.link!r}")
    missing = [name for name in args.files if not Path(name).is_file()]
    if missing:
        return fail("no such file: " + ", ".join(missing))
    from plugin.progress import ProgressLine
    progress = ProgressLine(redraw=None if runtime.settings.log_format == "text" else False)
    for n, name in enumerate(args.files, start=1):
        print(replay_file(Path(name), link, runtime, apply=args.apply), flush=True)
        if len(args.files) > 1:
            progress("replay", n, len(args.files))
    progress.finish()
    return 0


def cmd_recover(args: argparse.Namespace, runtime: Runtime) -> int:
    """Retry rejected or failed mails by their log ids, or release a quarantined sender and re-run its mails."""
    from plugin.recover import release_and_rerun, retry_logged
    if args.sender:
        link = runtime.store.link(args.link) if args.link else None
        if link is None:
            return fail("--sender needs --link NAME of an existing link")
        results = release_and_rerun(runtime, link, args.sender)
    else:
        results = [retry_logged(runtime, log_id) for log_id in args.log_id]
    for result in results:
        print(CONTROL_CHARACTERS.sub(lambda m: repr(m.group())[1:-1], result.line), flush=True)
    return 0 if all(result.ok for result in results) else 1


def cmd_quarantine(args: argparse.Namespace, runtime: Runtime) -> int:
    store = runtime.store
    if args.release:
        link = store.link(args.link) if args.link else None
        if link is None:
            return fail("--release needs --link NAME")
        if not store.release(link.id, args.release):
            return fail(f"{args.release} is not quarantined on {link.name}")
        print(f"{args.release} released on {link.name}")
        return 0
    names = {link.id: link.name for link in store.links()}
    for link_id, sender, since in store.quarantined():
        print(f"{names.get(link_id, link_id)} {sender} quarantined since {since:%Y-%m-%d %H:%M}")
    return 0


def cmd_serve(args: argparse.Namespace, runtime: Runtime) -> int:
    from plugin.app import CannotListen, serve
    try:
        serve(runtime, host=args.host or runtime.settings.host, port=args.port or runtime.settings.port)
    except CannotListen as exc:
        return fail(f"{exc}; choose another with --port or JSM_MAIL_PORT")
    return 0


def package_version() -> str:
    try:
        return version("jsm-mail")
    except PackageNotFoundError:
        return "unknown"


def add_sign_in_options(p: argparse.ArgumentParser, authority_default: str | None) -> None:
    p.add_argument("--auth", choices=[a.value for a in AuthMethod],
                   help="sign-in: password (default), ntlm, oauth2-app (default for graph), oauth2-delegated")
    p.add_argument("--tenant-id", help="Microsoft Entra tenant id (OAuth)")
    p.add_argument("--client-id", help="application (client) id of the app registration (OAuth)")
    p.add_argument("--client-secret-env", metavar="VAR", help="environment variable holding the client secret")
    p.add_argument("--client-secret-expires", metavar="YYYY-MM-DD", help="when the client secret runs out")
    p.add_argument("--client-certificate", metavar="PEM", help="certificate and private key instead of a secret")
    p.add_argument("--authority", default=authority_default,
                   help="identity platform (national clouds: https://login.microsoftonline.us, ...)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jsm-mail", description="Email channel for Jira Service Management")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="admin pages, Forge endpoints and the mailbox scheduler")
    p.add_argument("--host")
    p.add_argument("--port", type=port_number)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("poll", help="poll linked mailboxes",
                       epilog=f"--once exits {EXIT_MAILBOX_UNREACHABLE} when a mailbox could not be reached, "
                              "logged in to or its folder opened; 0 otherwise, even when mails were rejected")
    p.add_argument("--once", action="store_true", help="one round, then exit")
    p.add_argument("--link")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("inspect", help="what the product understands of each .eml")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect, needs_runtime=False)

    p = sub.add_parser("replay", help="what would happen to these mails on a link")
    p.add_argument("files", nargs="+")
    p.add_argument("--link", required=True)
    p.add_argument("--apply", action="store_true", help="do it")
    p.set_defaults(func=cmd_replay)

    links = sub.add_parser("links", help="linked mailboxes").add_subparsers(dest="links_command", required=True)
    p = links.add_parser("add")
    p.add_argument("--name", required=True, type=link_name)
    p.add_argument("--preset", choices=[preset.name for preset in PRESETS],
                   help="fill protocol, server, ports, security and sign-in for a provider; options given win")
    p.add_argument("--protocol", choices=[m.value for m in MailProtocol])
    p.add_argument("--host", help="server name (maildir: the folder path; graph: default https://graph.microsoft.com)")
    p.add_argument("--port", type=port_number)
    p.add_argument("--security", choices=[s.value for s in Security], help="default: ssl")
    p.add_argument("--username", required=True)
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--address", help="the mailbox's own address (default: the username when it is one)")
    p.add_argument("--service-desk", required=True, metavar="ID")
    p.add_argument("--request-type", required=True, metavar="ID")
    p.add_argument("--access", default="open", choices=[a.value for a in Access])
    p.add_argument("--smtp-host")
    p.add_argument("--smtp-port", type=port_number)
    p.add_argument("--smtp-security", choices=[s.value for s in Security], help="default: starttls")
    p.add_argument("--smtp-username", help="SMTP login (default: the mailbox's username)")
    p.add_argument("--smtp-password-env", metavar="VAR", help="environment variable holding the SMTP password "
                   "(default: the mailbox's password)")
    p.add_argument("--from-address", help="From of mail to customers (default: the mailbox's address)")
    p.add_argument("--from-name", help="display name of that From, e.g. 'Example Support'")
    p.add_argument("--alias", action="append", default=[], metavar="ADDR",
                   help="another address of this mailbox: never mailed, never a participant")
    p.add_argument("--sent-folder", metavar="FOLDER", help="IMAP folder that keeps a copy of each mail sent")
    p.add_argument("--subject-style", default="key", choices=["key", "reply"],
                   help="key: '[SD-42] summary'; reply: 'Re: <customer's subject> [SD-42]'")
    p.add_argument("--charset", default="utf-8", choices=["utf-8", "iso-2022-jp"],
                   help="charset of mail to customers; iso-2022-jp (CP50220) for old Japanese clients")
    p.add_argument("--max-attachment-mb", type=float, default=10,
                   help="files larger than this are named with a link instead of attached")
    p.add_argument("--max-mails-per-minute", type=int, default=10)
    p.add_argument("--intake-per-minute", type=lambda value: int(positive_number(value)), default=25,
                   help="mails handled per minute; the rest wait for later rounds, oldest first")
    p.add_argument("--no-replies", action="store_true", help="never mail agents' comments from this link")
    p.add_argument("--processed-label", type=label, help="default: JSM_MAIL_PROCESSED_LABEL or jsm-processed")
    p.add_argument("--rejected-label", type=label, help="default: JSM_MAIL_REJECTED_LABEL or jsm-rejected")
    p.add_argument("--max-size-mb", type=positive_number, help="default: JSM_MAIL_MAX_SIZE_BYTES or 50 MB")
    p.add_argument("--allow-missing-to", action="store_true", help="accept mail with no To and no Cc")
    p.add_argument("--anyone-may-comment", action="store_true")
    p.add_argument("--tracking-token", metavar="PREFIX", help="also thread on [PREFIX:0001234] in subjects")
    p.add_argument("--reopen-window-days", type=whole_number, default=14)
    p.add_argument("--smart-match", action="store_true", help="thread on subject + shared recipients")
    p.add_argument("--allow-autoreply-domain", action="append", default=[], metavar="DOMAIN", type=domain)
    p.add_argument("--block-domain", action="append", default=[], metavar="DOMAIN", type=domain)
    p.add_argument("--first-import", default="all", choices=[f.value for f in FirstImport],
                   help="mail already in the mailbox: new (only mail arriving after linking), recent (unread of "
                        "the last --first-import-days days too) or all unread (default)")
    p.add_argument("--first-import-days", type=whole_number, default=7)
    add_sign_in_options(p, authority_default="https://login.microsoftonline.com")
    p.set_defaults(func=cmd_links_add)
    p = links.add_parser("edit", help="change a link's settings; server or sign-in changes are probed first")
    p.add_argument("name")
    p.add_argument("--name", dest="new_name", metavar="NEW_NAME", help="rename the link")
    for option in ("host", "port", "security", "folder", "username", "address", "service-desk", "request-type",
                   "access", "first-import", "first-import-days", "processed-label", "rejected-label", "max-size-mb",
                   "tracking-token", "reopen-window-days", "from-address", "from-name", "smtp-host", "smtp-port",
                   "smtp-security", "smtp-username", "charset"):
        p.add_argument(f"--{option}")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the new password")
    for flag in ("smart-match", "anyone-may-comment", "allow-missing-to", "replies"):
        p.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction)
    p.add_argument("--allow-autoreply-domain", action="append", metavar="DOMAIN", help="replaces the list")
    p.add_argument("--block-domain", action="append", metavar="DOMAIN", help="replaces the list")
    p.set_defaults(func=cmd_links_edit)
    for command, what in (("disable", "stop polling a link (its settings stay)"), ("enable", "poll a link again")):
        p = links.add_parser(command, help=what)
        p.add_argument("name")
        p.set_defaults(func=cmd_links_enable)
    p = links.add_parser("request-types", help="request types of a service desk, and which can take mail")
    p.add_argument("--service-desk", required=True, metavar="ID")
    p.set_defaults(func=cmd_request_types)
    p = links.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_links_list)
    p = links.add_parser("auth", help="sign in as the mailbox user (device code) for IMAP/POP3/EWS over OAuth")
    p.add_argument("name")
    p.set_defaults(func=cmd_links_auth)
    p = links.add_parser("switch", help="move a link to a new sign-in or protocol, probed live first")
    p.add_argument("name")
    p.add_argument("--protocol", choices=[m.value for m in MailProtocol])
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--security", choices=[s.value for s in Security])
    p.add_argument("--username")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the new password")
    add_sign_in_options(p, authority_default=None)
    p.set_defaults(func=cmd_links_switch)
    p = links.add_parser("remove")
    p.add_argument("name")
    p.set_defaults(func=cmd_links_remove)
    p = links.add_parser("test-mail", help="send a test mail through the link to its own mailbox; the poll records "
                         "it as \"test mail received\", never as a request")
    p.add_argument("name")
    p.set_defaults(func=cmd_links_test_mail)
    p = links.add_parser("test", help="connect to the mailbox and check the request type in Jira")
    p.add_argument("name")
    p.set_defaults(func=cmd_links_test)

    p = sub.add_parser("logs", help="the processing log")
    p.add_argument("--link")
    p.add_argument("--since", metavar="WHEN", type=point_in_time,
                   help="today, yesterday, 2026-01-31, 2026-01-31T09:00 or an age: 7d, 12h, 30m")
    p.add_argument("--until", metavar="WHEN", type=point_in_time, help="as --since; rows before this time")
    p.add_argument("--search", metavar="TEXT", help="in the sender, subject, issue key, reason or Message-ID")
    p.add_argument("--limit", type=whole_number, metavar="N", help="only the newest N rows")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("recover", help="retry rejected or failed mails, or release a sender and re-run its mails")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--log-id", type=whole_number, action="append", metavar="N",
                       help="a processing log row (jsm-mail logs --json, or the admin page); may be repeated")
    which.add_argument("--sender", metavar="ADDR", help="release this quarantined sender and re-run its held mails")
    p.add_argument("--link", help="the link of --sender")
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("quarantine", help="senders stopped by the new-request budget")
    p.add_argument("--link")
    p.add_argument("--release", metavar="SENDER")
    p.set_defaults(func=cmd_quarantine)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # the database, kept mails and keys this process writes are its owner's alone
    try:
        runtime = Runtime(Settings.from_env()) if getattr(args, "needs_runtime", True) else None
    except SettingsError as exc:
        return fail(str(exc))
    configure_logging(verbose=args.verbose, log_format=runtime.settings.log_format if runtime else "text")
    status: int = args.func(args, runtime)
    return status


if __name__ == "__main__":
    sys.exit(main())
