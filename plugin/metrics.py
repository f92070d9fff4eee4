"""The service's Prometheus counters and histograms, counted where the work happens; /metrics shows them."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

MAILS = Counter("jsm_mail_mails", "Mails that reached an outcome, by link and outcome", ["link", "outcome"])
JIRA_CALLS = Counter("jsm_mail_jira_calls", "Calls to Jira, by method and status class (2xx, 4xx, 5xx, "
                     "unreachable)", ["method", "status"])
JIRA_ERRORS = Counter("jsm_mail_jira_errors", "Calls to Jira that failed (an error status or no answer), by method "
                      "and status class", ["method", "status"])
POLL_SECONDS = Histogram("jsm_mail_poll_duration_seconds", "How long a polling round of a link took", ["link"],
                         buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))


def count_jira_call(method: str, status: int | None) -> None:
    """One call to Jira: `status` is the HTTP status, None when Jira did not answer."""
    status_class = "unreachable" if status is None else f"{status // 100}xx"
    JIRA_CALLS.labels(method, status_class).inc()
    if status is None or status >= 400:
        JIRA_ERRORS.labels(method, status_class).inc()
