"""Admin pages to link a mailbox (a wizard from provider presets, tested before it is saved), and to edit,
disable, reconnect, delete and send a test mail through a link."""
from __future__ import annotations

import dataclasses

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from plugin.demo import demo_form_data
from plugin.domain import AuthMethod, Link, Secret
from plugin.errors import MailRejected, RetryLater
from plugin.link_form import (
    FIRST_IMPORT_CHOICES,
    Choice,
    LinkForm,
    awaiting_sign_in,
    connection_changed,
    desk_choices,
    form_data,
    jira_problem,
    link_from_form,
    new_form_data,
    request_type_choices,
    seal,
    unseal,
)
from plugin.link_probe import ProbeResult, probe_link
from plugin.outbound.send import MailRefused, can_send
from plugin.presets import DEMO, Preset, preset, presets_for
from plugin.runtime import Runtime
from plugin.store.outbox import Outbox
from plugin.store.store import LogEntry
from plugin.web import current_runtime
from plugin.web.auth import require_admin
from plugin.web.oauth import begin_sign_in, google_client

bp = Blueprint("links", __name__, url_prefix="/admin/links")


def _link_or_404(name: str) -> Link:
    link = current_runtime().store.link(name)
    if link is None:
        abort(404)
    return link


@bp.get("/new")
@require_admin
def choose_preset() -> ResponseReturnValue:
    return render_template("links_presets.html", presets=presets_for(current_runtime().settings.demo))


@bp.route("/new/<preset_name>", methods=["GET", "POST"])
@require_admin
def new_link(preset_name: str) -> ResponseReturnValue:
    runtime = current_runtime()
    chosen = preset(preset_name, demo=runtime.settings.demo)
    if chosen is None:
        abort(404)
    if request.method == "GET":
        data = new_form_data(chosen, runtime.settings)
        if chosen is DEMO:
            for key, value in demo_form_data(runtime.settings).items():
                data[key] = value  # MultiDict.update would add a second value, not replace the first
        form = LinkForm(data)
        return _form_page(form, chosen, None, probe=None)
    form = LinkForm(request.form)
    password, client_secret = _secrets(form)
    action = request.form.get("action", "save")
    if action == "refresh" or not _validate(form, client_secret, None):
        return _form_page(form, chosen, None, probe=None, password=password, client_secret=client_secret)
    if runtime.store.link(form.name.data.strip()):
        form.name.errors = [_("A link with this name exists already.")]
        return _form_page(form, chosen, None, probe=None, password=password, client_secret=client_secret)
    link = link_from_form(form, password, client_secret=client_secret)
    if link.auth is AuthMethod.OAUTH2_DELEGATED and action != "test":
        return _save_and_sign_in(form, chosen, link, password, client_secret)
    if link.auth is AuthMethod.OAUTH2_DELEGATED:  # no token to test with yet: the sign-in is the test
        return _form_page(form, chosen, None, probe=None, password=password, client_secret=client_secret)
    probe = probe_link(link, cafile=runtime.settings.ca_file)
    if action == "test" or not probe.ok:
        return _form_page(form, chosen, None, probe=probe, password=password, client_secret=client_secret)
    problem = jira_problem(runtime.jira, link.service_desk_id, link.request_type_id)
    if problem:
        form.request_type.errors = [problem]
        return _form_page(form, chosen, None, probe=probe, password=password, client_secret=client_secret)
    link = runtime.store.add_link(link)
    flash(_("Link %(name)s saved: the mailbox is polled from now on.", name=link.name))
    return redirect(url_for("links.show", name=link.name))


def _save_and_sign_in(form: LinkForm, chosen: Preset | None, link: Link, password: Secret,
                      client_secret: Secret) -> ResponseReturnValue:
    """A delegated-OAuth link has no token to test with before its user signs in: it is saved disabled, so
    nothing polls it, and the browser goes to the sign-in, whose probe enables it (plugin/web/oauth.py)."""
    runtime = current_runtime()
    problem = jira_problem(runtime.jira, link.service_desk_id, link.request_type_id)
    if problem:
        form.request_type.errors = [problem]
        return _form_page(form, chosen, None, probe=None, password=password, client_secret=client_secret)
    link = runtime.store.add_link(dataclasses.replace(link, enabled=False))
    flash(_("Link %(name)s saved disabled: it is enabled once the mailbox user has signed in.", name=link.name))
    return begin_sign_in(link, link.oauth.provider)


def _secrets(form: LinkForm) -> tuple[Secret, Secret]:
    """The password and client secret typed now, else those sealed in the page by an earlier step."""
    settings = current_runtime().settings
    return (Secret(form.password.data or "") or unseal(form.password_sealed.data or "", settings),
            Secret(form.client_secret.data or "") or unseal(form.client_secret_sealed.data or "", settings))


def _validate(form: LinkForm, client_secret: Secret, link: Link | None) -> bool:
    """The form's own checks, and those that depend on what is stored or configured: an app-only link needs a
    client secret, a Google sign-in the service's Google client."""
    valid: bool = form.validate()
    stored = link.oauth if link else None
    if form.auth.data == AuthMethod.OAUTH2_APP.value and not client_secret and \
            not (stored and (stored.client_secret or stored.certificate_path)):
        form.client_secret.errors = [*form.client_secret.errors, _("Give the client secret of the app registration.")]
        valid = False
    if form.auth.data == AuthMethod.OAUTH2_DELEGATED.value and form.oauth_provider.data == "google" and \
            google_client(current_runtime().settings) is None:
        form.auth.errors = [*form.auth.errors, _("Google sign-in needs the service's Google OAuth client: set "
                                                 "JSM_MAIL_GOOGLE_CLIENT_ID and JSM_MAIL_GOOGLE_CLIENT_SECRET.")]
        valid = False
    return valid


@bp.route("/<name>/edit", methods=["GET", "POST"])
@require_admin
def edit(name: str) -> ResponseReturnValue:
    runtime = current_runtime()
    link = _link_or_404(name)
    if request.method == "GET":
        return _form_page(LinkForm(form_data(link)), None, link, probe=None)
    form = LinkForm(request.form)
    password, client_secret = _secrets(form)
    action = request.form.get("action", "save")
    if action == "refresh" or not _validate(form, client_secret, link):
        return _form_page(form, None, link, probe=None, password=password, client_secret=client_secret)
    if form.name.data.strip() != link.name and runtime.store.link(form.name.data.strip()):
        form.name.errors = [_("A link with this name exists already.")]
        return _form_page(form, None, link, probe=None, password=password, client_secret=client_secret)
    changed = link_from_form(form, password or link.password, base=link, client_secret=client_secret)
    probe = None
    # A link waiting for its first sign-in has no token to probe with; the sign-in probes it.
    if not awaiting_sign_in(changed) and (action == "test" or connection_changed(link, changed)):
        probe = probe_link(changed, cafile=runtime.settings.ca_file, store=runtime.store)
        if action == "test" or not probe.ok:
            return _form_page(form, None, link, probe=probe, password=password, client_secret=client_secret)
    if (changed.service_desk_id, changed.request_type_id) != (link.service_desk_id, link.request_type_id):
        problem = jira_problem(runtime.jira, changed.service_desk_id, changed.request_type_id)
        if problem:
            form.request_type.errors = [problem]
            return _form_page(form, None, link, probe=probe, password=password, client_secret=client_secret)
    runtime.store.update_link(changed)
    flash(_("Link %(name)s saved.", name=changed.name))
    return redirect(url_for("links.show", name=changed.name))


def _form_page(form: LinkForm, chosen: Preset | None, link: Link | None, *, probe: ProbeResult | None,
               password: Secret | None = None, client_secret: Secret | None = None) -> ResponseReturnValue:
    """The wizard's page: server, sign-in, Jira (desks and request types by name), policy, outbound."""
    runtime = current_runtime()
    if password:
        form.password_sealed.data = seal(password, runtime.settings)
    if client_secret:  # the secret rides sealed between the steps and is never put back in its field
        form.client_secret_sealed.data = seal(client_secret, runtime.settings)
    desks, types, jira_trouble = _jira_choices(runtime, form.service_desk.data or "")
    form.service_desk.choices = [("", _("(pick a service desk)"))] + [(d.id, d.label) for d in desks]
    form.request_type.choices = [("", _("(pick a request type)"))] + [
        (t.id, t.label, {"disabled": True} if t.problem else {}) for t in types]
    oauth = (chosen.oauth if chosen else False) or form.auth.data in (AuthMethod.OAUTH2_DELEGATED.value,
                                                                        AuthMethod.OAUTH2_APP.value)
    delegated = form.auth.data == AuthMethod.OAUTH2_DELEGATED.value
    return render_template("links_form.html", form=form, preset=chosen, link=link, probe=probe, oauth=oauth,
                           jira_trouble=jira_trouble, has_password=bool(password or (link and link.password)),
                           has_client_secret=bool(client_secret or (link and link.oauth.client_secret)),
                           sign_in_first=delegated and (link is None or awaiting_sign_in(link)))


def _jira_choices(runtime: Runtime, desk_id: str) -> tuple[list[Choice], list[Choice], str | None]:
    """Desks and the chosen desk's request types from Jira, or why Jira cannot list them now."""
    try:
        desks = desk_choices(runtime.jira)
        types = request_type_choices(runtime.jira, desk_id) if desk_id else []
    except (RetryLater, MailRejected) as exc:
        return [], [], _("Jira cannot list the service desks and request types now: %(why)s", why=exc)
    return desks, types, None


@bp.get("/<name>")
@require_admin
def show(name: str) -> ResponseReturnValue:
    runtime = current_runtime()
    link = _link_or_404(name)
    failing = runtime.link_health.failing_since.get(link.name)
    return render_template("links_detail.html", link=link, failing=failing, can_send=can_send(link),
                           first_import_choices=FIRST_IMPORT_CHOICES, awaiting_sign_in=awaiting_sign_in(link))


@bp.post("/<name>/disable")
@require_admin
def disable(name: str) -> ResponseReturnValue:
    _link_or_404(name)
    current_runtime().store.set_link_enabled(name, False)
    flash(_("Link %(name)s disabled: it is not polled and sends nothing until you enable it.", name=name))
    return redirect(url_for("links.show", name=name))


@bp.post("/<name>/enable")
@require_admin
def enable(name: str) -> ResponseReturnValue:
    _link_or_404(name)
    current_runtime().store.set_link_enabled(name, True)
    flash(_("Link %(name)s enabled: it is polled again.", name=name))
    return redirect(url_for("links.show", name=name))


@bp.post("/<name>/reconnect")
@require_admin
def reconnect(name: str) -> ResponseReturnValue:
    """Probe the mailbox again; when it works, the link's failing state is cleared."""
    runtime = current_runtime()
    link = _link_or_404(name)
    probe = probe_link(link, cafile=runtime.settings.ca_file, store=runtime.store)
    if probe.ok:
        runtime.link_health.note(link.name, None)
        flash(_("Reconnected: %(result)s", result=probe.message))
    else:
        flash(_("Still failing: %(result)s", result=probe.message))
    return redirect(url_for("links.show", name=name))


@bp.route("/<name>/delete", methods=["GET", "POST"])
@require_admin
def delete(name: str) -> ResponseReturnValue:
    """Asks first; the processing log keeps the link's rows."""
    link = _link_or_404(name)
    if request.method == "GET" or request.form.get("confirm") != link.name:
        if request.method == "POST":
            flash(_("Type the link's name to delete it."))
        return render_template("links_delete.html", link=link)
    current_runtime().store.delete_link(link.name)
    flash(_("Link %(name)s deleted; its processing log stays.", name=link.name))
    return redirect(url_for("admin.index"))


@bp.post("/<name>/test-mail")
@require_admin
def send_test(name: str) -> ResponseReturnValue:
    from plugin.link_test_mail import send_test_mail
    runtime = current_runtime()
    link = _link_or_404(name)
    if not link.address:
        flash(_("The link has no address of its own to send the test mail to; give one in its settings."))
        return redirect(url_for("links.show", name=name))
    if not can_send(link):
        flash(_("The link sends no mail: give it an SMTP server and turn on mailing agents' comments."))
        return redirect(url_for("links.show", name=name))
    try:
        message_id, _delivery = send_test_mail(link, runtime.settings, Outbox(runtime.store).smtp_password(link.id))
    except (RetryLater, MailRefused) as failed:
        flash(_("The test mail could not be sent: %(why)s", why=failed.detail))
        return redirect(url_for("links.show", name=name))
    return redirect(url_for("links.test_mail", name=name, id=message_id))


def _arrival(link: Link, message_id: str) -> LogEntry | None:
    """The processing-log row of the test mail once a poll read it."""
    found = (entry for entry in current_runtime().store.processing_log(link=link.name, limit=200)
             if message_id and entry.message_id == message_id)
    return next(found, None)


@bp.get("/<name>/test-mail")
@require_admin
def test_mail(name: str) -> ResponseReturnValue:
    link = _link_or_404(name)
    message_id = request.args.get("id", "")
    return render_template("links_test_mail.html", link=link, message_id=message_id,
                           arrived=_arrival(link, message_id))


@bp.get("/<name>/test-mail.json")
@require_admin
def test_mail_status(name: str) -> ResponseReturnValue:
    """Whether the test mail arrived, and its log row: for a page that asks instead of refreshing."""
    link = _link_or_404(name)
    entry = _arrival(link, request.args.get("id", ""))
    row = entry and {"time": entry.time.isoformat(), "outcome": entry.outcome, "detail": entry.detail,
                     "evidence": entry.evidence, "subject": entry.subject, "message_id": entry.message_id}
    return jsonify({"arrived": entry is not None, "row": row})
