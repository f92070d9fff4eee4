"""One APScheduler job per link that polls it; jobs follow the links as admins change them, and new mail
announced by a link's watcher (plugin.arrival) starts its job at once."""
from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_SCHEDULER_SHUTDOWN, JobSubmissionEvent, SchedulerEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from plugin.arrival import ArrivalWatch
from plugin.poll import poll_mailbox
from plugin.runtime import Runtime

log = logging.getLogger(__name__)
SYNC_INTERVAL_S = 30
PURGE_INTERVAL_H = 24
MISSED_START_DELAY_S = 0.2  # a round still ending when mail was announced: start again once it has


def poll_job(scheduler: BackgroundScheduler, runtime: Runtime, link_id: int,
             arrivals: ArrivalWatch | None = None) -> None:
    if arrivals is None:
        _poll_round(scheduler, runtime, link_id)
        return
    arrivals.round_starts(link_id)
    hold_s = None
    try:
        # Mail announced while a round runs may have come after it listed the folder: one more round takes it.
        while (hold_s := _poll_round(scheduler, runtime, link_id)) is None and arrivals.more_news(link_id):
            pass
    finally:
        arrivals.round_ends(link_id, hold_s)


def _poll_round(scheduler: BackgroundScheduler, runtime: Runtime, link_id: int) -> float | None:
    """One round; the seconds to wait before the next one when Jira asked (Retry-After, an outage)."""
    link = runtime.store.link(link_id)
    if link is None or not link.enabled:
        return None
    report = poll_mailbox(link, runtime.settings, runtime.store, runtime.jira)
    runtime.link_health.note(link.name, report.error)
    if report.outcomes or report.error:
        log.info("poll %s", report)
    if report.retry_after_s and report.retry_after_s > runtime.settings.poll_interval_s:
        # Honour Retry-After (Jira's rate limit, a locked-out mailbox) instead of the usual interval.
        scheduler.modify_job(f"poll:{link_id}", next_run_time=datetime.now(UTC)
                             + timedelta(seconds=report.retry_after_s))
    # A mailbox that could not be reached is retried as soon as its watcher reaches it again.
    return None if report.unreachable else report.retry_after_s


def sync_jobs(scheduler: BackgroundScheduler, runtime: Runtime, arrivals: ArrivalWatch | None = None) -> None:
    """Add a job for each new link and remove the jobs of deleted ones; watchers follow the same links."""
    links = runtime.store.links()
    wanted = {f"poll:{link.id}": link for link in links if link.enabled}
    for job in scheduler.get_jobs():
        if job.id.startswith("poll:") and job.id not in wanted:
            job.remove()
    for job_id, link in wanted.items():
        if scheduler.get_job(job_id) is None:
            scheduler.add_job(poll_job, "interval", args=(scheduler, runtime, link.id, arrivals), id=job_id,
                              name=f"poll {link.name}", seconds=runtime.settings.poll_interval_s,
                              max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    if arrivals is not None:
        arrivals.follow(links)


def start_now(scheduler: BackgroundScheduler, link_id: int, delay_s: float = 0.0) -> None:
    """Run the link's polling job now (or in `delay_s`), instead of at its next interval."""
    with suppress(JobLookupError):  # the link was removed or disabled since its watcher saw the mail
        scheduler.modify_job(f"poll:{link_id}", next_run_time=datetime.now(UTC) + timedelta(seconds=delay_s))


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    """Poll every link on schedule; IMAP links are watched (IDLE or NOOP) until the scheduler shuts down."""
    scheduler = BackgroundScheduler(timezone="UTC")
    arrivals = ArrivalWatch(runtime.settings.idle_max_connections,
                            lambda link_id, delay_s: start_now(scheduler, link_id, delay_s),
                            cafile=runtime.settings.ca_file, store=runtime.store)

    def start_missed(event: JobSubmissionEvent) -> None:
        if event.job_id.startswith("poll:"):
            link_id = int(event.job_id.removeprefix("poll:"))
            if (delay_s := arrivals.missed(link_id)) is not None:
                start_now(scheduler, link_id, max(delay_s, MISSED_START_DELAY_S))

    def stop_watching(event: SchedulerEvent) -> None:
        arrivals.stop()

    scheduler.add_listener(start_missed, EVENT_JOB_MAX_INSTANCES)
    scheduler.add_listener(stop_watching, EVENT_SCHEDULER_SHUTDOWN)
    scheduler.add_job(sync_jobs, "interval", args=(scheduler, runtime, arrivals), id="sync-links",
                      seconds=SYNC_INTERVAL_S, max_instances=1, coalesce=True)
    scheduler.add_job(runtime.store.purge_logs, "interval", args=(runtime.settings.log_retention_days,),
                      id="purge-logs", hours=PURGE_INTERVAL_H, max_instances=1, coalesce=True)
    sync_jobs(scheduler, runtime, arrivals)
    scheduler.start()
    return scheduler
