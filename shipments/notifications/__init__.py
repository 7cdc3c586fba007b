"""Buyer notifications by email (issue 17; docs/notifications.md).

Read in this order: `moments` (what a buyer is told about, and the SQL the recorder embeds to
write them in the status change's own statement), `models` (registered with the `shipments`
app), `services` (settings, a shipment's buyer, unsubscribe, the running-late and retention
sweeps), `compose` (what a message says), `sender` (compose, claim, send), `views`
(the unsubscribe link), `admin`.
"""
