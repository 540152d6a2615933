"""Point-in-time feature pipeline: the rule, the catalog, and training/serving parity."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalog import CATALOG, features_for
from features.pipeline import assessment_dates, build_features, category_values, feature_columns
from features.schema import CaseTables, validate_tables
from features.vocab import EventType, Labelled, Offence, Stage

EVENT_CODES = EventType.codes()


@pytest.fixture(scope="module")
def small(cohort: CaseTables) -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 persons with their events, validated (str ids)."""
    tables = validate_tables(cohort)
    persons = tables.persons.head(60).reset_index(drop=True)
    events = tables.events[tables.events["person_id"].isin(persons["person_id"])].reset_index(drop=True)
    return persons, events


def frame_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


future_event = st.tuples(
    st.integers(0, 59),  # person
    st.integers(0, 800),  # days on or after D
    st.sampled_from(EVENT_CODES),
    st.one_of(st.none(), st.floats(0, 100)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stage=st.sampled_from(list(Stage)),
    added=st.lists(future_event, max_size=30),
    drop_share=st.floats(0, 1),
    shift=st.integers(0, 300),
    seed=st.integers(0, 10_000),
)
def test_events_on_or_after_d_never_change_features(
    small: tuple[pd.DataFrame, pd.DataFrame],
    stage: Stage,
    added: list[tuple[int, int, str, float | None]],
    drop_share: float,
    shift: int,
    seed: int,
) -> None:
    """Adding, removing or changing any event dated on or after D never changes the features on D."""
    persons, events = small
    points = assessment_dates(persons, stage)
    base = build_features(persons, events, points, stage=stage)

    as_of = events["person_id"].map(points.set_index("person_id")["as_of"])
    future = (events["date"] >= as_of).to_numpy()
    rng = np.random.default_rng(seed)
    changed = events.copy()
    # remove some future events, move others later, change the type and value of the rest
    drop = future & (rng.random(len(events)) < drop_share)
    move = future & ~drop & (rng.random(len(events)) < 0.5)
    retype = future & ~drop & ~move
    changed.loc[move, "date"] = changed.loc[move, "date"] + pd.Timedelta(days=shift)
    changed.loc[retype, "event_type"] = rng.choice(EVENT_CODES, int(retype.sum()))
    changed.loc[retype, "value"] = rng.uniform(0, 100, int(retype.sum()))
    changed = changed[~drop]
    extra = pd.DataFrame(
        [
            {
                "person_id": persons.loc[i, "person_id"],
                "date": cast(pd.Timestamp, points.loc[i, "as_of"]) + pd.Timedelta(days=d),
                "event_type": t,
                "value": v,
            }
            for i, d, t, v in added
        ],
        columns=["person_id", "date", "event_type", "value"],
    )
    changed = pd.concat([changed, extra], ignore_index=True)
    frame_equal(base, build_features(persons, changed, points, stage=stage))


def test_events_before_d_do_change_features(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    points = assessment_dates(persons, Stage.MIDTERM)
    base = build_features(persons, events, points, stage=Stage.MIDTERM)
    extra = pd.DataFrame(
        {
            "person_id": [persons.loc[0, "person_id"]] * 2,
            "date": [points["as_of"].loc[0] - pd.Timedelta(days=1)] * 2,
            "event_type": ["warning", "report_missed"],
            "value": [np.nan, np.nan],
        }
    )
    after = build_features(persons, pd.concat([events, extra], ignore_index=True), points, stage=Stage.MIDTERM)
    assert after["warning_90d"].loc[0] == base["warning_90d"].loc[0] + 1
    assert after["report_missed_30d"].loc[0] == base["report_missed_30d"].loc[0] + 1
    assert after.loc[0, "warning_days_since"] == 1
    frame_equal(base.iloc[1:], after.iloc[1:])


def test_one_person_alone_equals_whole_table(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Serving computes one person's features from that record alone: same as in training."""
    persons, events = small
    for stage in Stage:
        points = assessment_dates(persons, stage)
        whole = build_features(persons, events, points, stage=stage)
        for i in (0, 7, 33):
            one = persons.iloc[[i]]
            mine = events[events["person_id"] == one["person_id"].iloc[0]]
            alone = build_features(one, mine, points.iloc[[i]], stage=stage)
            frame_equal(whole.iloc[[i]], alone)


def as_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A table as the service passes it: column name to plain numpy array (strings as objects)."""
    return {
        c: frame[c].to_numpy(
            dtype=object
            if not pd.api.types.is_numeric_dtype(frame[c].dtype)
            and not pd.api.types.is_datetime64_any_dtype(frame[c].dtype)
            else None
        )
        for c in frame.columns
    }


@pytest.mark.parametrize("stage", list(Stage))
def test_columns_from_arrays_equal_the_frame_from_dataframes(
    small: tuple[pd.DataFrame, pd.DataFrame], stage: Stage
) -> None:
    """The service's array path computes exactly the training frame, for a batch and for one person."""
    persons, events = small
    points = assessment_dates(persons, stage)
    whole = build_features(persons, events, points, stage=stage)
    columns = feature_columns(as_arrays(persons), as_arrays(events), as_arrays(points), stage=stage)
    frame_equal(whole, pd.DataFrame(columns))
    for i in (0, 41):
        one = persons.iloc[[i]]
        mine = events[events["person_id"] == one["person_id"].iloc[0]]
        alone = feature_columns(as_arrays(one), as_arrays(mine), as_arrays(points.iloc[[i]]), stage=stage)
        frame_equal(whole.iloc[[i]], pd.DataFrame(alone))


def test_category_values_match_pandas(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    X = build_features(persons, events, assessment_dates(persons, Stage.INTAKE), stage=Stage.INTAKE)
    X.loc[3, "offence"] = np.nan
    for name in ("offence", "sex", "age"):
        expected = np.asarray(X[name], dtype=object)
        got = category_values(X[name])
        assert got.dtype == object and len(got) == len(expected)
        assert all((a == b) or (pd.isna(a) and pd.isna(b)) for a, b in zip(got, expected, strict=True))
    assert pd.isna(category_values(X["offence"])[3])
    reordered = X["offence"].cat.reorder_categories(list(X["offence"].cat.categories)[::-1])
    assert reordered.dtype == X["offence"].dtype  # equal to pandas, yet the codes mean other categories

    def shown(values: np.ndarray) -> list[str | None]:
        return [v if isinstance(v, str) else None for v in values]

    assert shown(category_values(reordered)) == shown(category_values(X["offence"]))


def test_columns_from_arrays_with_many_shuffled_and_repeated_persons(
    small: tuple[pd.DataFrame, pd.DataFrame], cohort: CaseTables
) -> None:
    """More than 64 persons (the index path), out of order, some assessed twice, categorical ids."""
    tables = validate_tables(cohort)
    persons = tables.persons.head(150).sample(frac=1.0, random_state=4).reset_index(drop=True)
    events = tables.events[tables.events["person_id"].isin(persons["person_id"])].reset_index(drop=True)
    events["person_id"] = events["person_id"].astype("category")
    points = assessment_dates(persons, Stage.MIDTERM)
    twice = (
        pd.concat(
            [points, points.head(20).assign(as_of=points["as_of"].head(20) - pd.Timedelta(days=40))], ignore_index=True
        )
        .sample(frac=1.0, random_state=5)
        .reset_index(drop=True)
    )
    whole = build_features(persons, events, twice, stage=Stage.MIDTERM)
    arrays = feature_columns(
        as_arrays(persons), as_arrays(events.astype({"person_id": str})), as_arrays(twice), stage=Stage.MIDTERM
    )
    frame_equal(whole, pd.DataFrame(arrays))
    for i in (0, 57, 169):
        frame_equal(whole.iloc[[i]], build_features(persons, events, twice.iloc[[i]], stage=Stage.MIDTERM))


def test_a_person_listed_twice_is_refused(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    two = pd.concat([persons.head(1), persons.head(1)], ignore_index=True)
    with pytest.raises(ValueError, match="listed once"):
        build_features(two, events, assessment_dates(two.head(1), Stage.INTAKE), stage=Stage.INTAKE)


def test_explicit_pairs_with_repeated_persons(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    pid = persons.loc[3, "person_id"]
    start = cast(pd.Timestamp, persons.loc[3, "supervision_start"])
    pairs = pd.DataFrame(
        {
            "person_id": [pid, pid, persons.loc[4, "person_id"]],
            "as_of": [
                start + pd.Timedelta(days=100),
                start + pd.Timedelta(days=300),
                cast(pd.Timestamp, persons.loc[4, "supervision_start"]) + pd.Timedelta(days=50),
            ],
        }
    )
    both = build_features(persons, events, pairs, stage=Stage.MIDTERM)
    for i in range(3):
        single = build_features(persons, events, pairs.iloc[[i]], stage=Stage.MIDTERM)
        frame_equal(both.iloc[[i]], single)
    assert both.loc[0, "days_since_start"] == 100 and both.loc[1, "days_since_start"] == 300


def test_unknown_person_in_assessments_is_refused(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    with pytest.raises(KeyError, match="nobody"):
        build_features(
            persons,
            events,
            pd.DataFrame({"person_id": ["nobody"], "as_of": [pd.Timestamp("2020-01-01")]}),
            stage=Stage.INTAKE,
        )


def test_categorical_columns_carry_the_full_vocabulary(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    X = build_features(persons.head(1), events, assessment_dates(persons.head(1), Stage.INTAKE), stage=Stage.INTAKE)
    assert list(X["offence"].cat.categories) == Offence.codes()


def test_catalog_covers_every_emitted_column(small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    persons, events = small
    for stage in Stage:
        X = build_features(persons, events, assessment_dates(persons, stage), stage=stage)
        assert list(X.columns) == features_for(stage)
        for name in X.columns:
            spec = CATALOG[name]
            assert spec.zh.strip() and spec.en.strip(), name
            assert spec.wording.zh.strip() and spec.wording.en.strip(), name
            assert spec.wording.missing_zh.strip() and spec.wording.missing_en.strip(), name
            assert stage in spec.stages
            assert spec.direction in (-1, 0, 1)
            value = X[name].iloc[0]
            assert spec.describe(value, "zh") and spec.describe(value, "en")


def test_intake_sees_no_compliance_features() -> None:
    names = features_for(Stage.INTAKE)
    assert "report_missed_90d" not in names and "family_change_90d" in names
    assert "report_missed_90d" in features_for(Stage.MIDTERM)


def test_templates_read_as_plain_words() -> None:
    spec = CATALOG["report_missed_90d"]
    assert spec.describe(3, "en") == "3 missed or late reports in the last 90 days"
    assert spec.describe(3, "zh") == "近90天未按时报到或迟到3次"
    assert CATALOG["offence"].describe("theft", "zh") == "罪名类别：盗窃"


def test_a_vocabulary_value_is_looked_up_by_code_and_needs_both_labels() -> None:
    assert Stage("midterm") is Stage.MIDTERM and Stage("midterm").label("zh") == "中期评估"
    with pytest.raises(ValueError):
        Stage("weekly")
    with pytest.raises(TypeError, match="'a' needs a zh and an en label"):

        class Half(Labelled):
            A = "a", "甲"
