"""The application ring: everything that touches the outside world, and the composition root.

Importers, the book check, the analyst store and its projector, training, the Kafka worker,
the mirror, the CLI, and :mod:`engine.app.pipelines`, where stages from ``streams`` are
assembled into the pipelines a user can run. Nothing in ``engine.events``, ``engine.log``,
``engine.models``, ``engine.runtime`` or ``streams`` imports this package (docs/architecture.md).
"""
