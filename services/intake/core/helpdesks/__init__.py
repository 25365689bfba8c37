"""Help-desk webhooks (Zendesk, Jira Service Management, Zammad, Freshdesk): pure parts.

`signatures` checks a delivery is the vendor's, `mapping` is one connected help desk's
validated configuration, `vendors` reads each vendor's payload into a `Change`, and
`place` turns a change into one Ladder command (or says why it cannot).
"""
