"""One polling job per enabled link, following the links as admins add and remove them."""
from apscheduler.schedulers.background import BackgroundScheduler

from plugin.runtime import Runtime
from plugin.scheduler import sync_jobs


def test_jobs_follow_the_links(settings, store, mail_account):
    runtime = Runtime(settings, store=store)
    scheduler = BackgroundScheduler(timezone="UTC")
    first = store.add_link(mail_account.link(name="first"))
    store.add_link(mail_account.link(name="second", enabled=False))

    sync_jobs(scheduler, runtime)
    assert [job.id for job in scheduler.get_jobs()] == [f"poll:{first.id}"]
    job = scheduler.get_job(f"poll:{first.id}")
    assert (job.max_instances, job.coalesce) == (1, True)
    assert job.trigger.interval.total_seconds() == settings.poll_interval_s

    store.delete_link("first")
    sync_jobs(scheduler, runtime)
    assert scheduler.get_jobs() == []
