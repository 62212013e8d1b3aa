"""Mail read from the providers: today a Gmail message read through the Gmail API for the
add-on's card (``gmail``). Automatic capture grows here: mailboxes connected, and their mail
and meetings synced by Microsoft Graph's and Gmail's change feeds on the job worker."""
