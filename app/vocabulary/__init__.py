"""The shared vocabulary: the kinds, statuses and value types every layer speaks.

Tables, schemas, services and routers all import these; this package imports none of
them (only the standard library, pydantic for ``CheckResult`` and numpy-free pure Python
for the sketch), so it can never close an import cycle.
"""
