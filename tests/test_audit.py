"""Audit store: round trips, keyed person ids, overrides, tamper detection and serialised appends."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.audit import CHAIN_TABLES, AuditRecord, AuditStore, VerifyResult, recipe
from serving.audit.recipe import record_hash

SECRET = "0f" * 32
RAW_ID = "PID-RAW-7f3a9c"
ROOT = Path(__file__).parents[1]


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.db"


@pytest.fixture()
def store(db: Path) -> Iterator[AuditStore]:
    s = AuditStore(f"sqlite:///{db}", secret=SECRET)
    yield s
    s.close()


def record(person_id: str = RAW_ID, **changes: Any) -> dict[str, Any]:
    rec = dict(
        assessment_id=str(uuid.uuid4()),
        person_id=person_id,
        stage="midterm",
        model_name="reoffence-midterm",
        model_version="3",
        policy_version="2026.11-1",
        request={
            "person": {"person_id": person_id, "offence": "theft"},
            "events": [{"person_id": person_id, "event_type": "warning", "date": "2026-01-02"}],
            "as_of": "2026-03-01",
        },
        response={
            "probability": 0.123,
            "band": "medium",
            "tier": "ordinary",
            "reasons": [{"feature": "warning_term", "text_zh": "矫正以来警告1次", "contribution": 0.02}],
        },
    )
    rec.update(changes)
    return rec


def tamper(db: Path, sql: str, *params: object) -> None:
    with closing(sqlite3.connect(db)) as con:
        con.execute(sql, params)
        con.commit()


def fill(store: AuditStore, n: int = 5) -> list[AuditRecord]:
    return [store.append_assessment(**record(f"P{i}")) for i in range(n)]


def test_round_trip(store: AuditStore) -> None:
    rec = record()
    stored = store.append_assessment(**rec)
    got = store.get(rec["assessment_id"])
    assert got == stored
    assert got.response == rec["response"]  # exactly what was returned
    assert got.request["person"]["offence"] == "theft"
    assert got.request["person"]["person_id"] == store.person_key(RAW_ID)
    assert got.request["events"][0]["person_id"] == store.person_key(RAW_ID)
    assert (got.seq, got.stage, got.model_name, got.model_version, got.policy_version) == (
        1,
        "midterm",
        "reoffence-midterm",
        "3",
        "2026.11-1",
    )
    assert got.created_at.endswith("+00:00") and got.overrides == ()
    assert store.get(str(uuid.uuid4())) is None and store.get("not-a-uuid") is None
    assert store.count() == 1


def test_json_normalisation(store: AuditStore) -> None:
    rec = record(response={"p": np.float64(0.5), "n": np.int64(3), "missing": float("nan"), "v": np.array([1, 2])})
    assert store.append_assessment(**rec).response == {"p": 0.5, "n": 3, "missing": None, "v": [1, 2]}
    with pytest.raises(TypeError, match="cannot store a object"):
        store.append_assessment(**record(response={"x": object()}))


def test_by_person_uses_the_keyed_hash_and_never_stores_the_raw_id(store: AuditStore, db: Path) -> None:
    first = store.append_assessment(**record())
    store.append_assessment(**record("someone-else"))
    second = store.append_assessment(**record(stage="release"))
    expected_key = hmac.new(bytes.fromhex(SECRET), RAW_ID.encode(), hashlib.sha256).hexdigest()
    assert store.person_key(RAW_ID) == expected_key == first.person_key
    assert [r.assessment_id for r in store.by_person(RAW_ID)] == [first.assessment_id, second.assessment_id]
    assert store.by_person("nobody") == []
    store.close()
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert RAW_ID.encode() not in raw and b"someone-else" not in raw
    assert expected_key.encode() in raw


def test_another_secret_gives_other_keys(db: Path, store: AuditStore) -> None:
    other = AuditStore(f"sqlite:///{db}", secret=b"another secret of 32 bytes......")
    try:
        assert other.person_key(RAW_ID) != store.person_key(RAW_ID)
    finally:
        other.close()


def test_override_stored_beside_the_assessment(store: AuditStore) -> None:
    original = store.append_assessment(**record())
    first = store.add_override(
        original.assessment_id, tier="strict", reason="家属反映近期情绪异常", actor="caseworker:wang"
    )
    second = store.add_override(original.assessment_id, tier="ordinary", reason="核实后无异常", actor="caseworker:li")
    got = store.get(original.assessment_id)
    assert got is not None
    assert got.overrides == (first, second)
    assert (first.tier, first.reason, first.actor) == ("strict", "家属反映近期情绪异常", "caseworker:wang")
    assert (got.response_json, got.record_hash) == (original.response_json, original.record_hash)
    assert store.count() == 1 and store.verify().ok and store.verify().checked == 3


def test_override_errors(store: AuditStore) -> None:
    original = store.append_assessment(**record())
    with pytest.raises(KeyError):
        store.add_override(str(uuid.uuid4()), tier="strict", reason="x", actor="cw")
    with pytest.raises(ValueError, match="reason"):
        store.add_override(original.assessment_id, tier="strict", reason="  ", actor="cw")
    with pytest.raises(ValueError):
        store.add_override(original.assessment_id, tier="very strict", reason="x", actor="cw")
    got = store.get(original.assessment_id)
    assert got is not None
    assert got.overrides == ()


def test_append_many_is_one_transaction(store: AuditStore) -> None:
    batch = [record(f"P{i}") for i in range(4)]
    stored = store.append_many(batch)
    assert [r.seq for r in stored] == [1, 2, 3, 4] and store.count() == 4
    with pytest.raises(ValueError, match="already stored"):
        store.append_many([record("new"), batch[0]])
    with pytest.raises(ValueError, match="repeated"):
        store.append_many([batch[1], batch[1]])
    with pytest.raises(ValueError, match="missing"):
        store.append_many([{k: v for k, v in record().items() if k != "response"}])
    assert store.count() == 4 and store.verify().ok and store.append_many([]) == []


def test_secret_must_be_long_hex_or_bytes(db: Path) -> None:
    with pytest.raises(ValueError, match="hex"):
        AuditStore(f"sqlite:///{db}", secret="not hex at all")
    with pytest.raises(ValueError, match="16 bytes"):
        AuditStore(f"sqlite:///{db}", secret=b"short")


def test_verify_intact_chain(store: AuditStore) -> None:
    fill(store)
    result = store.verify()
    assert (result.ok, result.checked, result.first_broken, result.problem) == (True, 5, None, None)


@pytest.mark.parametrize(
    "column",
    [
        "response_json",
        "request_json",
        "person_key",
        "stage",
        "model_version",
        "policy_version",
        "created_at",
        "prev_hash",
        "record_hash",
    ],
)
def test_verify_names_an_edited_row(store: AuditStore, db: Path, column: str) -> None:
    rows = fill(store)
    tamper(db, f"UPDATE assessments SET {column} = {column} || 'x' WHERE seq = 3")
    result = store.verify()
    assert not result.ok and result.first_broken == rows[2].assessment_id and result.checked == 2
    assert result.problem is not None
    assert "assessments" in result.problem


def test_verify_after_response_edited(store: AuditStore, db: Path) -> None:
    rows = fill(store)
    tamper(
        db,
        "UPDATE assessments SET response_json = ? WHERE assessment_id = ?",
        '{"band":"low","probability":0.01,"tier":"ordinary"}',
        rows[1].assessment_id,
    )
    result = store.verify()
    assert (result.ok, result.first_broken) == (False, rows[1].assessment_id)
    assert result.problem is not None
    assert "edited" in result.problem


def test_verify_after_middle_row_deleted(store: AuditStore, db: Path) -> None:
    rows = fill(store)
    tamper(db, "DELETE FROM assessments WHERE seq = 3")
    result = store.verify()
    assert (result.ok, result.first_broken) == (False, rows[3].assessment_id)
    assert result.problem is not None
    assert "seq 3 is missing" in result.problem


def test_verify_after_last_row_deleted(store: AuditStore, db: Path) -> None:
    fill(store)
    tamper(db, "DELETE FROM assessments WHERE seq = 5")
    result = store.verify()
    assert (result.ok, result.first_broken, result.checked) == (False, "assessments seq 5", 4)
    assert result.problem is not None
    assert "chain head" in result.problem


def test_verify_after_rows_reordered(store: AuditStore, db: Path) -> None:
    rows = fill(store)
    for sql in (
        "UPDATE assessments SET seq = -1 WHERE seq = 2",
        "UPDATE assessments SET seq = 2 WHERE seq = 4",
        "UPDATE assessments SET seq = 4 WHERE seq = -1",
    ):
        tamper(db, sql)
    result = store.verify()
    assert (result.ok, result.first_broken) == (False, rows[3].assessment_id)


def test_verify_after_rows_inserted(store: AuditStore, db: Path) -> None:
    rows = fill(store, 3)
    forged = {
        **asdict(rows[2]),
        "seq": 4,
        "assessment_id": "c0ffee00-0000-4000-8000-000000000000",
        "prev_hash": rows[2].record_hash,
    }
    del forged["overrides"]
    forged["record_hash"] = "0" * 64
    columns = ", ".join(forged)
    tamper(db, f"INSERT INTO assessments ({columns}) VALUES ({', '.join('?' * len(forged))})", *forged.values())
    result = store.verify()  # a careless forgery fails its own hash
    assert (result.ok, result.first_broken) == (False, forged["assessment_id"])
    forged["record_hash"] = record_hash(forged)  # a careful one is caught by the chain head
    tamper(db, "DELETE FROM assessments WHERE seq = 4")
    tamper(db, f"INSERT INTO assessments ({columns}) VALUES ({', '.join('?' * len(forged))})", *forged.values())
    result = store.verify()
    assert (result.ok, result.first_broken) == (False, "assessments seq 4")
    assert result.problem is not None
    assert "chain head records 3 rows, found 4" in result.problem


def test_verify_after_override_edited_or_deleted(store: AuditStore, db: Path) -> None:
    original = store.append_assessment(**record())
    overrides = [
        store.add_override(original.assessment_id, tier="strict", reason=f"r{i}", actor="cw") for i in range(3)
    ]
    tamper(db, "UPDATE overrides SET reason = 'something else' WHERE seq = 2")
    result = store.verify()
    assert (result.ok, result.first_broken, result.checked) == (False, overrides[1].override_id, 2)
    tamper(db, "DELETE FROM overrides WHERE seq = 2")
    result = store.verify()
    assert (result.ok, result.first_broken) == (False, overrides[2].override_id)


def test_concurrent_appends_from_threads(store: AuditStore) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        stored = list(pool.map(lambda i: store.append_assessment(**record(f"P{i}")), range(200)))
    assert store.count() == 200
    assert sorted(r.seq for r in stored) == list(range(1, 201))
    result = store.verify()
    assert (result.ok, result.checked) == (True, 200)


def test_concurrent_appends_from_processes(db: Path) -> None:
    """Three processes create the store and append at once: BEGIN IMMEDIATE keeps one chain."""
    code = textwrap.dedent(f"""
        import uuid
        from serving.audit import AuditStore, VerifyResult
        s = AuditStore("sqlite:///{db}", secret="{SECRET}")
        for i in range(40):
            s.append_assessment(assessment_id=str(uuid.uuid4()), person_id=f"X{{i}}", stage="intake",
                                model_name="m", model_version="1", policy_version="p", request={{}}, response={{}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT) for _ in range(2)]
    store = AuditStore(f"sqlite:///{db}", secret=SECRET)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda i: store.append_assessment(**record(f"P{i}")), range(40)))
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
        assert store.count() == 120
        assert store.verify() == VerifyResult(True, 120)
    finally:
        store.close()


@pytest.mark.parametrize(
    "obj",
    [
        {"person": {"person_id": "P1", "x": [1.5, None, 'a:NaN,"person_id":"Q"']}, "person_id": "P2"},
        {"rows": [{"person_id": "A"}, {"person_id": None}, {"note": '{"person_id":"B"}'}]},
        {"person_id": 17, "v": float("nan"), "w": [np.float32(0.25), np.int64(3)], "d": date(2024, 1, 2)},
        {"é": "ü", "person_id": "中文"},
    ],
)
def test_fast_canonical_keying_equals_the_general_walk(obj: dict[str, Any]) -> None:
    from serving.audit.recipe import canonical_json, canonical_keyed, jsonable

    key_of = lambda v: f"k({v})"  # noqa: E731
    assert canonical_keyed(obj, key_of) == canonical_json(jsonable(obj, key_of))


# ---------------------------------------------------------------- orjson encoding against the json code it replaced
def _json_canonical_keyed(obj: Any, key_of: Callable[[Any], str]) -> str:
    """canonical_keyed as it was before orjson (json.dumps), kept to compare with."""
    from serving.audit.recipe import canonical_json, jsonable, keyed_text, plain

    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=plain
        )
    except ValueError:
        return canonical_json(jsonable(obj, key_of))
    return keyed_text(text, obj, key_of)


def _json_record_hash(row: dict[str, Any]) -> str:
    """record_hash as it was before orjson (the signature of the hash is not hashed)."""
    text = json.dumps(
        {k: v for k, v in row.items() if k not in ("record_hash", "record_sig")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class Code(enum.StrEnum):
    LOW = "low"
    HIGH = "high"


KEY_OF = lambda v: f"k({v})"  # noqa: E731


def odd_record() -> dict[str, Any]:
    return {
        "person": {"person_id": Code.HIGH, "birth": date(1980, 2, 3), "seen": datetime(2026, 1, 2, 3, 4, 5, 6, UTC)},
        "events": [
            {"person_id": "P-1", "n": np.int64(3), "x": np.float32(0.1), "ok": np.bool_(True)},
            {"person_id": None, "v": np.array([[1.5, np.nan], [np.inf, 1e-7]])},
        ],
        "band": Code.LOW,
        "codes": [Code.LOW, Code.HIGH],
        "missing": float("nan"),
        "neg": -float("inf"),
        "small": 5e-05,
        "big": 1e22,
        "f64": np.float64(0.3),
        "day": np.datetime64("2024-01-02"),
        "text": 'quote " back \\ nl \n tab \t nul \x00 ls \u2028 emoji 😀 中文 "person_id":"X"',
        "nested": {"deeper": {"person_id": "中文-id"}},
        "zero": -0.0,
    }


def test_orjson_canonical_text_means_what_the_json_code_wrote() -> None:
    new, old = recipe.canonical_keyed(odd_record(), KEY_OF), _json_canonical_keyed(odd_record(), KEY_OF)
    assert json.loads(new) == json.loads(old)
    got = json.loads(new)
    assert got["person"]["person_id"] == "k(high)" and got["events"][0]["person_id"] == "k(P-1)"
    assert got["nested"]["deeper"]["person_id"] == "k(中文-id)" and got["events"][1]["person_id"] is None
    assert '"X"' in got["text"] and got["text"].endswith('"person_id":"X"')  # text is not keyed
    assert got["events"][0]["x"] == float(np.float32(0.1)) != 0.1  # float32 keeps its exact value
    assert got["day"] == "2024-01-02" and got["person"]["seen"] == "2026-01-02T03:04:05.000006+00:00"
    assert got["missing"] is None and got["neg"] is None and got["events"][1]["v"] == [[1.5, None], [None, 1e-7]]
    assert list(got) == sorted(got) and "\\u0000" in new and "\u2028" in new and "😀" in new  # canonical, UTF-8


E = enum.Enum("E", {"A": "a"})


@pytest.mark.parametrize(
    "obj",
    [
        {Code.LOW: 1, "person_id": "P"},  # str-subclass key: orjson refuses, the general path writes it
        {1: "a", "person_id": "P"},  # non-str key
        {"n": 2**70, "person_id": "P"},  # past 64 bits
        {"person_id": 17, "x": [1.0]},  # non-string person id
        {"person_id": "P", "u": uuid.UUID(int=5), "e": E.A},
        {"person_id": "P", "deep": json.loads("[" * 300 + "]" * 300)},  # past orjson's depth limit
    ],
)
def test_what_orjson_refuses_takes_the_general_path(obj: dict[Any, Any]) -> None:
    from serving.audit.recipe import canonical_json, jsonable

    new = recipe.canonical_keyed(obj, KEY_OF)
    assert new == canonical_json(jsonable(obj, KEY_OF))
    assert json.loads(new).get("person_id") == f"k({obj['person_id']})"


def test_unstorable_values_still_raise() -> None:
    for bad in (object(), {1, 2}, datetime(2020, 1, 1).time(), b"bytes"):
        with pytest.raises(TypeError, match="cannot store a"):
            recipe.canonical_keyed({"person_id": "P", "x": bad}, KEY_OF)


json_keys = st.text(max_size=8)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()
json_trees = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(json_keys | st.just("person_id"), kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_trees)
def test_orjson_canonical_text_is_byte_identical_without_floats(obj: Any) -> None:
    """Without floats (whose repr differs: 1e-7 vs 1e-07) the text is the json code's, byte for byte."""
    assert recipe.canonical_keyed(obj, KEY_OF) == _json_canonical_keyed(obj, KEY_OF)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        json_scalars | st.floats(),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(json_keys | st.just("person_id"), kids, max_size=4),
        max_leaves=20,
    )
)
def test_orjson_canonical_text_means_the_same_with_floats(obj: Any) -> None:
    assert json.loads(recipe.canonical_keyed(obj, KEY_OF)) == json.loads(_json_canonical_keyed(obj, KEY_OF))


any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
row_values = (
    st.none()
    | st.integers(-(2**70), 2**70)
    | any_text
    | st.sampled_from(['"', "\\", "\x00\x1f\x7f", "\u2028\u2029", "😀", "\ud800", '{"a":"\\"b\\n"}'])
)
tampered_values = st.booleans() | st.floats() | st.sampled_from([1e-7, 5e-05, float("nan")])  # as SQLite may return


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([c.name for c in CHAIN_TABLES["assessments"].columns]) | any_text,
        row_values | tampered_values,
        max_size=14,
    )
)
def test_record_hash_is_the_json_hash_of_any_row(row: dict[str, Any]) -> None:
    """The hash is the json code's for any row; lone surrogates and NaN fail as before."""
    try:
        expected = _json_record_hash(row)
    except (UnicodeEncodeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            record_hash(row)
        return
    assert record_hash(row) == expected


def test_record_hash_of_str_subclass_keys_and_values() -> None:
    row = {Code.LOW: Code.HIGH, "seq": 1, "x": None}  # orjson refuses str-subclass keys: json writes them
    assert record_hash(row) == _json_record_hash(row) == record_hash({"low": "high", "seq": 1, "x": None})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(any_text, st.none() | st.integers(-(2**63), 2**64 - 1) | any_text, max_size=10))
def test_orjson_row_bytes_equal_json_bytes(row: dict[str, Any]) -> None:
    import orjson

    try:
        old = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except UnicodeEncodeError:  # lone surrogate: orjson refuses it, and record_hash falls back to json
        with pytest.raises(orjson.JSONEncodeError):
            orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
        return
    assert orjson.dumps(row, option=orjson.OPT_SORT_KEYS) == old


def test_odd_record_stored_and_verified(store: AuditStore) -> None:
    rec = record(
        request=odd_record(),
        response={"p": np.float32(0.25), "person_id": RAW_ID, "band": Code.LOW},
        explanation={"values": np.arange(3.0), "missing": float("nan")},
    )
    stored = store.append_assessment(**rec)
    assert stored.request["nested"]["deeper"]["person_id"] == store.person_key("中文-id")
    assert stored.response == {"p": 0.25, "person_id": store.person_key(RAW_ID), "band": "low"}
    assert stored.explanation == {"values": [0.0, 1.0, 2.0], "missing": None}
    assert store.get(rec["assessment_id"]) == stored and store.verify() == VerifyResult(True, 1)


def test_store_written_by_the_json_code_verifies(store: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows hashed and encoded by the code before orjson still verify, and the chain goes on."""
    with monkeypatch.context() as m:
        m.setattr(recipe, "record_hash", _json_record_hash)
        m.setattr(recipe, "canonical_keyed", _json_canonical_keyed)
        old = store.append_many([record(f"P{i}", request=odd_record()) for i in range(3)])
        store.add_override(old[0].assessment_id, tier="strict", reason='理由 "quoted"', actor="cw")
    assert old[0].request_json == _json_canonical_keyed(odd_record(), store.person_key)
    store.append_many([record(f"Q{i}", request=odd_record()) for i in range(3)])
    assert store.verify() == VerifyResult(True, 7)
    tamper(store_db(store), "UPDATE assessments SET actor = 'x' WHERE seq = 2")
    assert not store.verify().ok


def store_db(store: AuditStore) -> Path:
    database = store._engine.url.database
    assert database is not None
    return Path(database)
