"""One APScheduler job per link that polls it; jobs follow the links as admins change them."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from plugin.poll import poll_mailbox
from plugin.runtime import Runtime

log = logging.getLogger(__name__)
SYNC_INTERVAL_S = 30
PURGE_INTERVAL_H = 24


def poll_job(scheduler: BackgroundScheduler, runtime: Runtime, link_id: int) -> None:
    link = runtime.store.link(link_id)
    if link is None or not link.enabled:
        return
    report = poll_mailbox(link, runtime.settings, runtime.store, runtime.jira)
    runtime.link_health.note(link.name, report.error)
    if report.outcomes or report.error:
        log.info("poll %s", report)
    if report.retry_after_s and report.retry_after_s > runtime.settings.poll_interval_s:
        # Honour Retry-After (Jira's rate limit, a locked-out mailbox) instead of the usual interval.
        scheduler.modify_job(f"poll:{link_id}", next_run_time=datetime.now(UTC)
                             + timedelta(seconds=report.retry_after_s))


def sync_jobs(scheduler: BackgroundScheduler, runtime: Runtime) -> None:
    """Add a job for each new link and remove the jobs of deleted ones."""
    wanted = {f"poll:{link.id}": link for link in runtime.store.links() if link.enabled}
    for job in scheduler.get_jobs():
        if job.id.startswith("poll:") and job.id not in wanted:
            job.remove()
    for job_id, link in wanted.items():
        if scheduler.get_job(job_id) is None:
            scheduler.add_job(poll_job, "interval", args=(scheduler, runtime, link.id), id=job_id,
                              name=f"poll {link.name}", seconds=runtime.settings.poll_interval_s,
                              max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(sync_jobs, "interval", args=(scheduler, runtime), id="sync-links", seconds=SYNC_INTERVAL_S,
                      max_instances=1, coalesce=True)
    scheduler.add_job(runtime.store.purge_logs, "interval", args=(runtime.settings.log_retention_days,),
                      id="purge-logs", hours=PURGE_INTERVAL_H, max_instances=1, coalesce=True)
    sync_jobs(scheduler, runtime)
    scheduler.start()
    return scheduler
