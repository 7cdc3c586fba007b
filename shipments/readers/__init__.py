"""The read side: what the API, the admin and the buyers' tracking page read.

`selectors` (shop-scoped reads), `timeline` (one shipment's events, own and through its
transport units, in one query) and `tracking_page` (the public page's views). Nothing here
writes; the writes are in shipments.recording and shipments.services.
"""
