"""Outbound mail: an agent's public comment in Jira, mailed to the customer from the link's mailbox."""
