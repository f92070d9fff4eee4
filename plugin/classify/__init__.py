"""Classify: customer mail, auto-reply, bounce, feedback report or loop, with evidence."""
