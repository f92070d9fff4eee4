"""Flask blueprints: admin pages, processing and error logs, health."""
