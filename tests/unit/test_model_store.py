"""The model store: content addressing, verification, prefixes; model cards."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
import pytest

from engine.models import (
    ClassScores,
    Member,
    Metrics,
    ModelCard,
    ModelStore,
    ModelStoreError,
    Rows,
    TrainingData,
    decode_card,
    encode_card,
    load_card,
)
from engine.models.card import CardError


def test_put_names_bytes_by_their_sha256_and_get_verifies(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    name = store.put(b"model bytes")
    assert name == hashlib.sha256(b"model bytes").hexdigest()
    assert (tmp_path / "models" / name).read_bytes() == b"model bytes"
    assert store.get(name) == b"model bytes"
    assert store.put(b"model bytes") == name  # the same bytes are stored once
    assert store.hashes() == [name]
    assert store.get(name[:6]) == b"model bytes"
    assert store.resolve(name[:4].upper()) == name


def _shared_prefix_pair() -> tuple[bytes, bytes]:
    """Two byte strings whose sha256 share the first four hex digits (birthday search)."""
    seen: dict[str, bytes] = {}
    i = 0
    while True:
        data = f"artifact {i}".encode()
        prefix = hashlib.sha256(data).hexdigest()[:4]
        if prefix in seen:
            return seen[prefix], data
        seen[prefix] = data
        i += 1


def test_an_ambiguous_prefix_names_the_candidates(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    a, b = (store.put(x) for x in _shared_prefix_pair())
    with pytest.raises(ModelStoreError, match=f"hash prefix {a[:4]} is ambiguous in {tmp_path}"):
        store.get(a[:4])
    assert store.get(a[:20]) != store.get(b[:20])


def test_missing_and_malformed_references_say_what_and_where(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(
        ModelStoreError, match=rf"no model whose hash starts with abcd in {tmp_path}"
    ):
        store.get("abcd")
    full = "ab" * 32
    with pytest.raises(ModelStoreError, match=rf"model {full} is not in {tmp_path}/models"):
        store.get(full)
    for bad in ("abc", "xyz123", "a" * 65):
        with pytest.raises(ModelStoreError, match="is not a model hash"):
            store.get(bad)


def test_a_corrupt_artifact_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name = store.put(b"trees and leaves")
    (tmp_path / name).write_bytes(b"trees and leafs")
    with pytest.raises(ModelStoreError, match=rf"model {name} in {tmp_path} is corrupt"):
        store.get(name)
    assert store.put(b"trees and leaves") == name  # putting it again repairs the file
    assert store.get(name) == b"trees and leaves"


def _card(models: dict[str, Member]) -> ModelCard:
    rows = Rows(10, 1, 20, 25, 100, 200, {"down": 3, "flat": 4, "up": 3})
    scores = ClassScores(count=3, predicted=2, precision=0.5, recall=None)
    metrics = Metrics(10, 0.4, 1.05, 0, 0.4, {"down": scores, "flat": scores, "up": scores})
    data = TrainingData(
        session="s",
        run_id="s-labels-1",
        journal_topic="s.journal",
        journal_start=0,
        journal_stop=30,
        until="60%",
        until_ts=300,
        feature_schema=1,
        features={"cadence": "book"},
        labels={"horizon_ms": 1000, "threshold_bp": 0.3},
        holdout_fraction=0.2,
        embargo_ns=10**9,
        train=rows,
        holdout=rows,
    )
    return ModelCard(
        models=models,
        data=data,
        meta_scheme="test",
        seed=0,
        thread_count=1,
        libraries={"catboost": "1.2.10"},
        metrics={"context": metrics, "micro": metrics, "meta": metrics},
    )


def test_cards_are_canonical_and_round_trip(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    members = {
        r: Member(store.put(r.encode()), ["spread_bps"], {"depth": 4})
        for r in ("meta", "context", "micro")
    }
    card = _card(members)
    raw = encode_card(card)
    assert raw == encode_card(decode_card(raw))
    keys = list(msgspec.json.decode(raw))
    assert keys == sorted(keys)
    bundle = store.put(raw)
    assert load_card(store, bundle[:8]) == card
    assert card.hashes() == {r: m.hash for r, m in members.items()}


def test_something_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    model = store.put(b'{"oblivious_trees": []}')
    with pytest.raises(ModelStoreError, match="is not a model bundle"):
        load_card(store, model)
    with pytest.raises(CardError, match="not JSON"):
        decode_card(b"\x00\x01")
    two_roles = _card({r: Member("0" * 64, [], {}) for r in ("context", "micro")})
    with pytest.raises(CardError, match="a bundle needs"):
        decode_card(encode_card(two_roles))


FROZEN_V1 = Path(__file__).parents[1] / "data" / "model_card_v1.json"
"""A real version 1 card, written by ``tape train demo-aapl --until 80%`` before version 2."""


def test_a_frozen_version_1_card_is_read_through_its_upcaster() -> None:
    raw = FROZEN_V1.read_bytes()
    head = msgspec.json.decode(raw)
    assert head["version"] == 1
    card = decode_card(raw)
    assert card.version == 2
    d = card.data
    assert d.in_sample_until == head["data"]["until_ts"] + head["data"]["embargo_ns"]
    assert (d.train.first_session, d.holdout.last_session) == ("demo-aapl", "demo-aapl")
    assert d.train.rows == head["data"]["train"]["rows"]
    assert card.hashes() == {r: m["hash"] for r, m in head["models"].items()}
    assert card.metrics["meta"].baseline_log_loss is None  # version 1 did not record it
    assert card.bases() == ["context", "micro"]
