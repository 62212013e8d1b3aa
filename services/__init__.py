"""Inbox CRM's domain: the central store's models and the rules every client shares.

Nothing in this package imports Flask. The Outlook pane, the Gmail cards, the sync API,
the command line and the benchmarks all call these functions with a SQLAlchemy session
and the acting user.
"""
