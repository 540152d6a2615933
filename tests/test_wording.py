"""Reason sentences are right for every catalog feature, every kind of value and both languages.

The checks are written against what a caseworker reads (the sentence), not against the wording
code: no placeholder, no "none"/"无记录" where a number belongs, no minus sign before a count, no
raw float, whole years of age, percentages for shares of the term, English plurals that agree.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import CATALOG, Typical, check_sentence
from features.vocab import CATEGORICAL_COLUMNS, Lang

#: features whose natural unit has a decimal (rates and point scores); every other number is whole
DECIMAL_OK = {"violations_per_month", "points_latest", "points_mean_90d"}
#: features that are a share of the supervision term: shown as a percentage
PERCENT = {"share_served"}


def values_of(name: str) -> list[object]:
    """Missing, 0, 1, 2, fractional, negative where allowed and very large values of a feature."""
    kind = CATALOG[name].kind
    if kind == "categorical":
        return [None, *CATEGORICAL_COLUMNS[name].codes()]
    if kind == "flag":
        return [None, 0, 1, True, False]
    out: list[object] = [None, math.nan, 0, 0.0, 1, 1.0, 2, 0.5, 1.5, 2.25, 1 / 3, 0.04, 0.96, 12.75, 1e6, 123456.789]
    return out


CASES = [(name, value) for name in CATALOG for value in values_of(name)]
TYPICALS = [
    None,
    Typical(median=0.0, missing=0.0),
    Typical(median=1.0, missing=0.5),
    Typical(median=2.5, missing=0.9, shares={"male": 0.81, "theft": 0.004, "1": 0.12}),
]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_every_feature_and_kind_of_value_reads_right(name: str, value: object, lang: Lang) -> None:
    for typical in TYPICALS:
        text = CATALOG[name].describe(value, lang, typical=typical)
        problems = check_sentence(text, lang, decimals=name in DECIMAL_OK, percent=name in PERCENT)
        assert not problems, f"{name}={value!r} ({lang}): {text!r}: {problems}"


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(CATALOG)),
    lang=st.sampled_from(["zh", "en"]),
    number=st.one_of(st.none(), st.floats(-1e7, 1e7), st.just(math.nan), st.integers(-50, 5000)),
    median=st.one_of(st.none(), st.floats(-500, 1e5, allow_nan=False)),
    missing=st.floats(0, 1),
)
def test_any_number_reads_right(
    name: str, lang: Lang, number: float | None, median: float | None, missing: float
) -> None:
    spec = CATALOG[name]
    value: object
    if spec.kind != "numeric" and number is not None and math.isnan(number):
        number = None
    if spec.kind == "categorical":
        codes = CATEGORICAL_COLUMNS[name].codes()
        value = None if number is None else codes[int(abs(number)) % len(codes)]
    elif spec.kind == "flag":
        value = None if number is None else bool(number)
    elif number is not None:
        value = abs(number)  # no feature is negative
    else:
        value = number
    if median is not None:
        median = abs(median)
    typical = Typical(median=median, missing=missing, shares={"1": missing, "male": missing})
    text = spec.describe(value, lang, typical=typical)
    assert not check_sentence(text, lang, decimals=name in DECIMAL_OK, percent=name in PERCENT), text


def test_a_missing_value_has_its_own_sentence() -> None:
    family = CATALOG["family_change_days_since"]
    assert family.describe(None, "zh") == "无重大家庭变故记录"
    assert family.describe(None, "en") == "no major family changes on record"
    assert CATALOG["points_mean_90d"].describe(None, "en") == "no monthly points on record in the last 90 days"


def test_reasons_compare_with_the_typical_person_of_the_stage() -> None:
    spec = CATALOG["report_missed_90d"]
    typical = Typical(median=0.0, missing=0.0)
    assert spec.describe(3, "zh", typical=typical) == "近90天未按时报到或迟到3次（同阶段一般为0次）"
    assert spec.describe(3, "en", typical=typical) == "3 missed or late reports in the last 90 days (typical: 0)"
    assert spec.describe(1, "en") == "1 missed or late report in the last 90 days"
    assert CATALOG["age"].describe(34.9, "en", typical=Typical(median=31.2)) == "aged 34 (typical: 31)"
    assert CATALOG["share_served"].describe(0.5, "zh") == "已完成矫正期的50%"
    sex = CATALOG["offence"].describe("theft", "en", typical=Typical(shares={"theft": 0.23}))
    assert sex == "offence category: theft (23% at this stage)"


@pytest.mark.parametrize(
    ("text", "lang", "problem"),
    [
        ("距最近一次重大家庭变故无记录天", "zh", "none in a number slot"),
        ("mean monthly points over the last 90 days none recorded", "en", "none in a number slot"),
        ("近90天未按时报到比前90天多-2次", "zh", "minus before a count"),
        ("已完成矫正期的0.5", "zh", "share not in percent"),
        ("aged 10.2", "en", "decimal in a whole number"),
        ("1 prior convictions", "en", "plural after 1"),
        ("2 prior conviction", "en", "singular after 2"),
        ("aged {value}", "en", "placeholder"),
        ("score 3.14159", "en", "too many decimals"),
    ],
)
def test_the_checks_catch_each_known_fault(text: str, lang: Lang, problem: str) -> None:
    decimals = problem == "too many decimals"
    assert check_sentence(text, lang, decimals=decimals, percent="share" in problem)
