"""The normaliser: a parsed record -> what the recorder stores, or the precise reason it cannot be.

- `events`: an event record -> `EventInput` (`normalize_event`), the checks in the order their
  reasons are reported;
- `codes`: the partner code -> event code rule (docs/mapping.md);
- `times`: a record's time -> an aware instant and how its zone was known;
- `places`: the offline gazetteer that gives a named place's zone (docs/places.md);
- `storable`: what PostgreSQL cannot store, found before a batch reaches it;
- `context`: what the normaliser knows about the run's feed (`feed_context`).

Nothing here writes to the database; the appliers of the other record kinds are
`warehouses.ingest.apply`.
"""
