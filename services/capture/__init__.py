"""Mail and meetings read from the providers, without a rep pressing Log.

``gmail`` reads the open Gmail message for the add-on's card. Automatic capture: ``mailboxes``
(connected by OAuth with PKCE or the organization's consent, disconnected, what was taken and
why), ``providers`` (Microsoft Graph's delta queries, Gmail's history, Calendar's sync tokens,
their errors typed), ``sync`` (a pass over one mailbox, under its lease, a page per transaction),
``rules`` (what is taken, through the pane's own ``log_email`` and ``log_meeting``), ``push``
(Graph's change notifications, Gmail's Pub/Sub), ``meetings`` (how a held one went, its
transcript), ``notices`` (a deal's owner warned before reading), ``vault`` (tokens encrypted at
rest, keys rotated) and ``standin`` (both providers played on loopback for the tests and the
preview)."""
