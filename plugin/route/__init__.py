"""Route: which request a mail belongs to (threading), and why; lookups are handed in."""
