"""``tape --help`` must not load the heavy parts (the bench times it: bench/cli_startup.py)."""

from __future__ import annotations

import subprocess
import sys

from engine.app.cli.db_commands import PROJECT_BATCH
from engine.app.store.projector import DEFAULT_BATCH


def test_project_batch_default_is_the_projectors() -> None:
    assert PROJECT_BATCH == DEFAULT_BATCH


def test_the_cli_loads_no_stage_store_or_kafka_until_a_command_needs_it() -> None:
    """Importing the CLI (all it takes for --help) leaves numba, river, CatBoost, SQLAlchemy,
    polars, confluent-kafka, faust and aiokafka unloaded; they load with the commands that use
    them."""
    code = (
        "import sys, engine.app.cli; "
        "print(' '.join(m for m in ('numba', 'river', 'catboost', 'sqlalchemy', 'polars', "
        "'confluent_kafka', 'faust', 'aiokafka', 'streams') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert loaded == []
