"""Where payloads come from, and where they are kept.

- `payloads`: the content-addressed payload store every run reads from;
- `inbox`: files dropped in a feed's folder;
- `http_pull`: a feed's URL, fetched with a conditional GET;
- `schedules`: what a scheduled feed does when it is due, and its beat schedule.

A payload that arrives becomes a run through `warehouses.ingest.runs.feed_run_create`; the push
API (`warehouses/api/`) and the admin's upload call it the same way.
"""
