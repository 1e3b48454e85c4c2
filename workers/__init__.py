"""Background work on Dramatiq: tenant-aware actors, the broker and the worker runtime.

`workers.broker` chooses the broker by URL, `workers.middleware` carries the tenant in
every message, `workers.actors` declares actors once for whatever broker is installed,
and `workers.app` is what `renshi worker` loads in each worker process.
"""
