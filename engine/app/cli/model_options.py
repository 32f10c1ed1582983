"""Model-store options shared by ``tape run``, ``tape replay`` and ``tape train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer

from engine.models import ModelStore, load_any
from engine.runtime import ConfigError, RunConfig
from engine.runtime.topology import Catalog

Models = Annotated[
    Path | None,
    typer.Option(
        "--models",
        help="Model store directory (default <data dir>/models).",
        show_default=False,
    ),
]
MODELS_STAGE_ID = "models"


def model_store(data: Path, directory: Path | None) -> ModelStore:
    """The model store: ``--models DIR``, else ``<data dir>/models``."""
    return ModelStore(directory if directory is not None else data / "models")


def with_bundle(
    config: RunConfig | None, store: ModelStore, ref: str, pipelines: Catalog
) -> RunConfig:
    """``config`` with ``stages.models.bundle`` set to the full hash of bundle ``ref``."""
    bundle = store.resolve(ref)
    load_any(store, bundle)  # a bundle or walk-forward card, present and intact, or an error now
    config = config or RunConfig()
    chosen = pipelines.get(config.pipeline)
    if not any(stage.id == MODELS_STAGE_ID for stage in chosen.stages):
        having = [p.name for p in pipelines if any(s.id == MODELS_STAGE_ID for s in p.stages)]
        raise ConfigError(
            f"--bundle needs a pipeline with the models stage; {chosen.name} has none. Pass "
            f"--pipeline with one of: {', '.join(having) or 'none'}"
        )
    stages = dict(config.stages)
    stages[MODELS_STAGE_ID] = {**stages.get(MODELS_STAGE_ID, {}), "bundle": bundle}
    return msgspec.structs.replace(config, stages=stages)
