"""The `jsm-mail` command line: serve, poll, inspect, replay, links, logs, quarantine."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from plugin.domain import Access, AuthMethod, Link, MailProtocol, OAuthSettings, Secret, Security, SmartMatch
from plugin.errors import MailRejected, RetryLater
from plugin.inspect import inspect_file
from plugin.mailboxes.oauth import expiry_warnings
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.store.store import LOG_FIELDS, parse_since

DEFAULT_PORTS = {(MailProtocol.IMAP, Security.SSL): 993, (MailProtocol.IMAP, Security.STARTTLS): 143,
                 (MailProtocol.IMAP, Security.NONE): 143, (MailProtocol.POP3, Security.SSL): 995,
                 (MailProtocol.POP3, Security.STARTTLS): 110, (MailProtocol.POP3, Security.NONE): 110,
                 (MailProtocol.EWS, Security.SSL): 443, (MailProtocol.GRAPH, Security.SSL): 443}


def fail(message: str) -> int:
    print(f"jsm-mail: {message}", file=sys.stderr)
    return 2


def cmd_inspect(args: argparse.Namespace, runtime: Runtime | None) -> int:
    for name in args.files:
        result = inspect_file(Path(name))
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(f"{name}: {result['kind']}  {result['subject']!r}  from={(result['from'] or {}).get('address')}"
                  f"  reason={result['reason']}")
    return 0


def cmd_links_add(args: argparse.Namespace, runtime: Runtime) -> int:
    password = os.environ.get(args.password_env) if args.password_env else ""
    if args.password_env and password is None:
        return fail(f"environment variable {args.password_env} is not set")
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
    link = Link(
        id=0, name=args.name, protocol=protocol, host=args.host or "https://graph.microsoft.com",
        port=args.port or DEFAULT_PORTS.get((protocol, security), 0), security=security, username=args.username,
        password=Secret(password or ""), folder=args.folder, service_desk_id=args.service_desk,
        request_type_id=args.request_type, access=Access(args.access),
        address=args.address or (args.username if "@" in args.username else ""),
        smtp_host=args.smtp_host, smtp_port=args.smtp_port, smtp_security=Security(args.smtp_security),
        processed_label=args.processed_label, rejected_label=args.rejected_label,
        max_size_bytes=int(args.max_size_mb * 1024 * 1024), require_to=not args.allow_missing_to,
        anyone_may_comment=args.anyone_may_comment, tracking_token=args.tracking_token,
        reopen_window_days=args.reopen_window_days, smart_match=SmartMatch(enabled=args.smart_match),
        autoreply_allow_domains=tuple(args.allow_autoreply_domain), blocked_domains=tuple(args.block_domain),
        auth=auth, oauth=oauth)
    problem = request_type_problem(runtime, link)
    if problem:
        return fail(problem)
    link = runtime.store.add_link(link)
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
    """Why the link's request type cannot take mail, or None when it can."""
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
            "enabled": link.enabled, "auth": link.auth.value,
            "client_secret_expires": _iso(link.oauth.client_secret_expires),
            "refresh_token_expires": _iso(link.oauth.refresh_token_expires),
            "warnings": expiry_warnings(link.oauth, datetime.now(UTC).date())}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def cmd_links_list(args: argparse.Namespace, runtime: Runtime) -> int:
    links = runtime.store.links()
    if args.json:
        print(json.dumps([link_json(link) for link in links], ensure_ascii=False))
        return 0
    for link in links:
        print(f"{link.name}: {link.protocol.value}://{link.username}@{link.host}:{link.port}/{link.folder} "
              f"-> service desk {link.service_desk_id}, request type {link.request_type_id} ({link.access.value})"
              f"; sign-in {link.auth.value}{_expiries(link)}")
        for warning in expiry_warnings(link.oauth, datetime.now(UTC).date()):
            print(f"  WARNING {link.name}: {warning}")
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
    while True:
        reports = poll_links(runtime.settings, runtime.store, runtime.jira, args.link)
        for report in reports:
            print(report, flush=True)
        if args.once:
            return 0
        waits = [r.retry_after_s for r in reports if r.retry_after_s] + [runtime.settings.poll_interval_s]
        time.sleep(max(waits))


def cmd_logs(args: argparse.Namespace, runtime: Runtime) -> int:
    entries = runtime.store.processing_log(link=args.link, since=parse_since(args.since) if args.since else None,
                                           limit=args.limit)
    entries.reverse()  # oldest first, as a log reads
    if args.json:
        for entry in entries:
            print(json.dumps(entry.as_json(), ensure_ascii=False))
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=LOG_FIELDS)
        writer.writeheader()
        for entry in entries:
            writer.writerow(entry.as_json())
    else:
        for e in entries:
            what = e.issue_key or e.reason or ""
            print(f"{e.time:%Y-%m-%d %H:%M:%S} {e.link} {e.outcome:15s} {what:12s} {e.sender or '-'} "
                  f"{e.subject or ''!r}: {e.detail}" + (f" [{e.evidence}]" if e.evidence else ""))
    return 0


def cmd_replay(args: argparse.Namespace, runtime: Runtime) -> int:
    from plugin.replay import replay_file
    link = runtime.store.link(args.link)
    if link is None:
        return fail(f"no link named {args.link!r}")
    for name in args.files:
        print(replay_file(Path(name), link, runtime, apply=args.apply), flush=True)
    return 0


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
    from plugin.app import serve
    serve(runtime, host=args.host or runtime.settings.host, port=args.port or runtime.settings.port)
    return 0


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
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="admin pages, Forge endpoints and the mailbox scheduler")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("poll", help="poll linked mailboxes")
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
    p.add_argument("--name", required=True)
    p.add_argument("--protocol", required=True, choices=[m.value for m in MailProtocol])
    p.add_argument("--host", help="server name (maildir: the folder path; graph: default https://graph.microsoft.com)")
    p.add_argument("--port", type=int)
    p.add_argument("--security", default="ssl", choices=[s.value for s in Security])
    p.add_argument("--username", required=True)
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--address", help="the mailbox's own address (default: the username when it is one)")
    p.add_argument("--service-desk", required=True, metavar="ID")
    p.add_argument("--request-type", required=True, metavar="ID")
    p.add_argument("--access", default="open", choices=[a.value for a in Access])
    p.add_argument("--smtp-host")
    p.add_argument("--smtp-port", type=int)
    p.add_argument("--smtp-security", default="starttls", choices=[s.value for s in Security])
    p.add_argument("--processed-label", default="jsm-processed")
    p.add_argument("--rejected-label", default="jsm-rejected")
    p.add_argument("--max-size-mb", type=float, default=50)
    p.add_argument("--allow-missing-to", action="store_true", help="accept mail with no To and no Cc")
    p.add_argument("--anyone-may-comment", action="store_true")
    p.add_argument("--tracking-token", metavar="PREFIX", help="also thread on [PREFIX:0001234] in subjects")
    p.add_argument("--reopen-window-days", type=int, default=14)
    p.add_argument("--smart-match", action="store_true", help="thread on subject + shared recipients")
    p.add_argument("--allow-autoreply-domain", action="append", default=[], metavar="DOMAIN")
    p.add_argument("--block-domain", action="append", default=[], metavar="DOMAIN")
    add_sign_in_options(p, authority_default="https://login.microsoftonline.com")
    p.set_defaults(func=cmd_links_add)
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
    p = links.add_parser("test", help="connect to the mailbox and check the request type in Jira")
    p.add_argument("name")
    p.set_defaults(func=cmd_links_test)

    p = sub.add_parser("logs", help="the processing log")
    p.add_argument("--link")
    p.add_argument("--since", metavar="DATE")
    p.add_argument("--limit", type=int)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("quarantine", help="senders stopped by the new-request budget")
    p.add_argument("--link")
    p.add_argument("--release", metavar="SENDER")
    p.set_defaults(func=cmd_quarantine)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    runtime = Runtime(Settings.from_env()) if getattr(args, "needs_runtime", True) else None
    return args.func(args, runtime)


if __name__ == "__main__":
    sys.exit(main())
