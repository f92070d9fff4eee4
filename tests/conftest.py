"""Fixtures: real Dovecot and SMTP servers on loopback, a contract-checking fake Jira, settings."""
pytest_plugins = ["tests.fakes.dovecot", "tests.fakes.smtp", "tests.fakes.jira"]
