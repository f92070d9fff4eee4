"""Jira: the typed interface to Jira Service Management, its REST implementation and the dry run."""
