"""``tape models``: the model store and the model lifecycle (docs/models.md, "The lifecycle").

``list`` / ``show`` / ``diff`` read the content-addressed store; ``promote`` and ``retrain``
write to a session's journal (through :func:`engine.log.journal.append_control`), so a replay
switches model at exactly the event they wrote.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.table import Table

from engine.app.cli.model_cards import UNIFORM, print_card, when
from engine.app.cli.model_options import Models, model_store
from engine.app.cli.root import app, console, context, fail
from engine.events.control import ModelPromoted, SessionClosed
from engine.log import EmbeddedLog, RecordBatch
from engine.log.journal import append_control, journal_topic
from engine.models import Card, ModelStore, ModelStoreError, WalkForwardCard, decode_any
from engine.models.card import CardError
from engine.runtime import RunError
from engine.runtime.runs import session_opened

if TYPE_CHECKING:
    from engine.app.training.gate import GateDecision

models_app = typer.Typer(
    help="The model store and lifecycle: list, show, diff, promote, retrain.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


def cards(store: ModelStore) -> list[tuple[str, Card]]:
    """Every bundle and walk-forward card in the store (other artifacts are models)."""
    out = []
    for digest in store.hashes():
        raw = store.get(digest)
        if not raw.startswith(b"{") or b'"format"' not in raw[:4096]:
            continue
        try:
            out.append((digest, decode_any(raw, digest)))
        except CardError:
            continue
    return out


@models_app.command("list")
def list_command(ctx: typer.Context, models: Models = None) -> None:
    """Bundles and walk-forward cards in the store, with their windows and scores."""
    store = model_store(context(ctx).data, models)
    found = cards(store)
    if not found:
        console.print(f"no bundles in {store.directory}: train one with `tape train`")
        return
    table = Table(title=f"model store {store.directory}", title_justify="left")
    for column in (
        "hash",
        "kind",
        "sessions",
        "trained to",
        "in sample until",
        "rows",
        "log loss",
        "baseline",
    ):
        table.add_column(
            column, justify="right" if column in ("rows", "log loss", "baseline") else "left"
        )
    for digest, card in found:
        table.add_row(digest[:12], *_summary(card))
    console.print(table)
    console.print(
        f"out-of-sample meta-learner log loss beside the class-frequency baseline; {UNIFORM}"
    )


def _summary(card: Card) -> list[str]:
    if isinstance(card, WalkForwardCard):
        m, last = card.pooled["meta"], card.folds[-1]
        sessions = ", ".join(s.session for s in card.sessions)
        trained, until = last.train.last_ts, last.in_sample_until
        kind = f"walk-forward ({len(card.folds)} folds, {card.layers})"
    else:
        m, d = card.metrics["meta"], card.data
        sessions = ", ".join(s.session for s in d.sessions) or d.session
        trained, until = d.train.last_ts, d.in_sample_until
        kind = f"bundle ({len(card.bases())} bases)"
    base = "-" if m.baseline_log_loss is None else f"{m.baseline_log_loss:.4f}"
    return [kind, sessions, when(trained), when(until), f"{m.rows:,}", f"{m.log_loss:.4f}", base]


def _load(store: ModelStore, ref: str) -> tuple[str, Card]:
    try:
        digest = store.resolve(ref)
        return digest, decode_any(store.get(digest), digest)
    except (ModelStoreError, CardError) as exc:
        fail(str(exc), code=1)


@models_app.command("show")
def show_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Bundle or walk-forward card (hash or prefix).")],
    models: Models = None,
) -> None:
    """A card in full: its windows, out-of-sample metrics and folds."""
    digest, card = _load(model_store(context(ctx).data, models), ref)
    print_card(console, digest, card)


def differences(a: object, b: object, path: str = "") -> list[tuple[str, str, str]]:
    """(field path, value in a, value in b) for every leaf that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    same = a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )
    return [] if same else [(path, _cell(a), _cell(b))]


def _cell(value: object) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 70 else text[:67] + "..."


@models_app.command("diff")
def diff_command(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="First bundle or card.")],
    b: Annotated[str, typer.Argument(help="Second bundle or card.")],
    models: Models = None,
) -> None:
    """Every field in which two cards differ: data windows, settings, members, metrics."""
    store = model_store(context(ctx).data, models)
    (da, ca), (db, cb) = _load(store, a), _load(store, b)
    rows = differences(msgspec.to_builtins(ca), msgspec.to_builtins(cb))
    if not rows:
        console.print(f"{da[:12]} and {db[:12]} are the same card")
        return
    table = Table(title=f"{da[:12]} vs {db[:12]}: {len(rows)} fields differ", title_justify="left")
    for column in ("field", da[:12], db[:12]):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _closed(log: EmbeddedLog, session: str) -> bool:
    """Whether the session's journal ends with ``session.closed``."""
    from engine.events import decode

    reader = log.reader(journal_topic(session))
    end = reader.end_offset
    batch = reader.read(end - 1, 1) if end else None
    return isinstance(batch, RecordBatch) and isinstance(decode(batch.values()[0]), SessionClosed)


def journal(log: EmbeddedLog, session: str, events: list[msgspec.Struct]) -> str:
    """Journal ``events`` into ``session`` (or its inbox); where they went, in words."""
    try:
        session_opened(log, session)
    except RunError as exc:
        fail(str(exc), code=1)
    if _closed(log, session):
        fail(
            f"session {session} is closed (its journal ends with session.closed): a promotion "
            "there would change nothing; promote into the session that will use the bundle",
            code=1,
        )
    offsets = append_control(log, session, events)
    if offsets is None:
        return (
            f"into the inbox of {session}: a live process is writing its journal and will "
            "journal it in order"
        )
    return f"into {journal_topic(session)} at offset{'s' if len(offsets) > 1 else ''} " + ", ".join(
        f"{o:,}" for o in offsets
    )


@models_app.command("promote")
def promote_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Bundle or walk-forward card to promote.")],
    session: Annotated[str, typer.Option(help="Session whose journal gets the promotion.")],
    operator: Annotated[str, typer.Option(help="Who promotes it (recorded).")] = "operator",
    previous: Annotated[
        str, typer.Option(help="The bundle you believe is current (recorded; optional).")
    ] = "",
    models: Models = None,
) -> None:
    """Journal a model.promoted event: from it on, the models stage evaluates this bundle."""
    log = context(ctx).log
    digest, _ = _load(model_store(log.root, models), ref)
    now = time.time_ns()
    where = journal(log, session, [ModelPromoted(now, now, digest, previous, "operator", operator)])
    console.print(f"promoted {digest[:16]} {where}")
    console.print(
        f"runs of {session} switch to it at that event; a replay switches at the same one"
    )


@models_app.command("retrain")
def retrain_command(
    ctx: typer.Context,
    sessions: Annotated[list[str], typer.Argument(help="Sessions to train the candidate on.")],
    current: Annotated[
        str | None, typer.Option(help="The bundle in effect now (hash or prefix), if any.")
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(help="Session whose journal gets the decision (default: the last given)."),
    ] = None,
    fold: Annotated[
        float, typer.Option(help="The latest fold: share of labelled rows held out to compare on.")
    ] = 0.2,
    every_labels: Annotated[
        int | None,
        typer.Option(
            help="Keep following the (live) last session and retrain each time this many more "
            "labels have matured, until it closes.",
            min=1,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="CatBoost random seed.")] = 0,
    layers: Annotated[
        str, typer.Option(help="Model design: merged (one model), two or five base models.")
    ] = "merged",
    models: Models = None,
) -> None:
    """Train a candidate, compare it with the current bundle and the baseline on the latest
    fold, and journal the decision (and the promotion, if it passed)."""
    from engine.app.training import TrainError, TrainOptions
    from engine.app.training.data import Cutoff
    from engine.app.training.retrain import Retrainer

    log = context(ctx).log
    store = model_store(log.root, models)
    options = TrainOptions(Cutoff("100%", fraction=1.0), holdout=fold, seed=seed, layers=layers)
    target = into or sessions[-1]
    try:
        retrainer = Retrainer(log, sessions, options, store, current and store.resolve(current))
    except ModelStoreError as exc:
        fail(str(exc), code=1)
    try:
        if every_labels is None:
            _decided(log, target, retrainer.decide())
            return
        while True:
            decision = retrainer.poll(every_labels)
            if decision is not None:
                _decided(log, target, decision)
            if retrainer.closed:
                return
            time.sleep(1.0)  # the CLI's pace, not a processor's input
    except (TrainError, RunError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    finally:
        retrainer.close()


def _decided(log: EmbeddedLog, target: str, decision: GateDecision) -> None:
    e = decision.evaluated
    console.print(f"candidate {e.candidate[:16]}: {e.detail}")
    where = journal(log, target, list(decision.events))
    console.print(f"journaled {' and '.join(type(x).__name__ for x in decision.events)} {where}")
