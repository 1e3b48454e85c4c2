"""The module `renshi worker` hands to Dramatiq's command line as its broker.

Importing it in a worker process sets the process up: every model mapped, every actor
module imported, the engine configured (its connections open lazily, on the worker's
event loop), and the broker chosen by `BROKER_URL` installed with all actors declared.
"""

from __future__ import annotations

from renshi.cli import load_models
from renshi.database import setup_engine
from workers import actors
from workers import broker as brokers

load_models()
actors.import_all()
setup_engine()
broker = brokers.install(brokers.make_broker(brokers.configured_url()))
