"""GET /metrics: Prometheus text format, for a bearer token (JSM_MAIL_METRICS_TOKEN) or, without one, loopback only."""
from __future__ import annotations

import hmac
from collections.abc import Iterator
from ipaddress import ip_address

from flask import Blueprint, Response, abort, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from plugin.link_status import all_statuses
from plugin.store.store import Store
from plugin.web import current_runtime

bp = Blueprint("metrics", __name__)


class StoreGauges(Collector):
    """Gauges read from the store at each scrape, so they hold whatever process did the polling."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        statuses = all_statuses(self._store)
        gauges = {
            "outbox": GaugeMetricFamily("jsm_mail_outbox_depth", "Agents' comments queued or being mailed",
                                        labels=["link"]),
            "waiting": GaugeMetricFamily("jsm_mail_mails_waiting", "Mails not handled yet: unread in the mailbox "
                                         "at the last round, or begun and waiting", labels=["link"]),
            "quarantined": GaugeMetricFamily("jsm_mail_quarantined_senders", "Senders in quarantine",
                                             labels=["link"]),
            "failing": GaugeMetricFamily("jsm_mail_link_failing_seconds", "How long the link has failed "
                                         "(0: its last round went well)", labels=["link"]),
            "success": GaugeMetricFamily("jsm_mail_last_success_timestamp_seconds", "When the link's last round "
                                         "went well (Unix time)", labels=["link"]),
        }
        for status in statuses:
            gauges["outbox"].add_metric([status.link], status.outbox)
            gauges["waiting"].add_metric([status.link], status.mails_waiting)
            gauges["quarantined"].add_metric([status.link], status.quarantined)
            gauges["failing"].add_metric([status.link], status.failing_for_s() or 0)
            if status.last_success_at:
                gauges["success"].add_metric([status.link], status.last_success_at.timestamp())
        yield from gauges.values()


def allowed() -> bool:
    """With JSM_MAIL_METRICS_TOKEN: that bearer token, from anywhere. Without: only callers on this machine."""
    token = current_runtime().settings.metrics_token.reveal()
    if token:
        given = request.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())
    try:
        return ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    if not allowed():
        abort(403 if not current_runtime().settings.metrics_token else 401)
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(StoreGauges(current_runtime().store))
    return Response(generate_latest(REGISTRY) + generate_latest(scraped), mimetype=CONTENT_TYPE_LATEST)
