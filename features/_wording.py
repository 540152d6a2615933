"""How a feature's value is written in a reason sentence (design.md, "What a reason says").

Each catalog feature carries a :class:`Wording`: the kind of value it holds (a count, a signed
change, days, months, whole years of age, a share of the term, a rate, a points score, a grade,
a flag or a category), its sentence in Chinese and English with the value slot ``{v}``, the
English noun in singular and plural, and its own sentence for a missing value. :func:`render`
writes the value in natural units and, given the stage's :class:`Typical` value (computed from
the training rows and stored with the model), adds the comparison: "近90天未按时报到3次（同阶段一般为0次）"
/ "3 missed reports in the last 90 days (typical: 0)".

:func:`check_sentence` is the reader's check of a finished sentence (no placeholder, no "none"
where a number belongs, no minus before a count, no raw float, plurals that agree); the tests and
the answer benchmark use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Lang = Literal["zh", "en"]


class ValueKind(StrEnum):
    """The kind of value a feature holds, which decides how it is written."""

    COUNT = "count"  # events: whole number with a noun ("3 missed reports")
    DAYS = "days"  # whole days
    MONTHS = "months"  # whole months
    AGE = "age"  # whole years, rounded down
    SHARE = "share"  # a share of the term, as a percentage
    RATE = "rate"  # events per month, one decimal
    POINTS = "points"  # a points score, at most one decimal
    GRADE = "grade"  # quarterly grade 0 / 1 / 2
    FLAG = "flag"  # yes / no
    CATEGORY = "category"  # a controlled vocabulary's label


@dataclass(frozen=True)
class Wording:
    """The sentence of one feature. ``zh``/``en`` hold ``{v}``, the value in words with its unit."""

    kind: ValueKind
    zh: str
    en: str
    missing_zh: str
    missing_en: str
    unit_zh: str = ""  # 次, 天, 个月, 岁, 分
    one_en: str = ""  # English noun after 1 ("missed report")
    many_en: str = ""  # after any other number ("missed reports")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a cache key per fitted model
class Typical:
    """The typical person of a stage, from the training rows: stored with the fitted model.

    ``median`` of the non-missing values (numbers), ``missing`` the share of rows without a value,
    ``shares`` the share of rows with each value (flags as ``"1"``/``"0"``, categories by code).
    """

    median: float | None = None
    missing: float | None = None
    shares: Mapping[str, float] = field(default_factory=dict)


_GRADES = {0: ("不合格", "unqualified"), 1: ("合格", "qualified"), 2: ("良好", "good")}


def is_missing(value: Any) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _whole(value: float, kind: ValueKind) -> int:
    return math.floor(value + 1e-9) if kind is ValueKind.AGE else round(value)


def _noun(w: Wording, n: int | float) -> str:
    return w.one_en if n == 1 else w.many_en


def percent(share: float) -> str:
    """A share as a whole percentage; "<1%" and ">99%" for the edges that would round to 0 or 100."""
    pct = share * 100
    if 0 < pct < 0.5:
        return "<1%"
    if 99.5 <= pct < 100:
        return ">99%"
    return f"{round(pct)}%"


def number_words(w: Wording, value: float, lang: Lang, *, short: bool = False) -> str:
    """A number in natural units: "3次" / "3 missed reports"; ``short`` drops the English noun."""
    kind = w.kind
    if kind is ValueKind.SHARE:
        return percent(value)
    if kind is ValueKind.GRADE:
        zh, en = _GRADES[min(2, max(0, round(value)))]
        return zh if lang == "zh" else en
    if kind in (ValueKind.RATE, ValueKind.POINTS):
        text = f"{value:.1f}"
        if kind is ValueKind.POINTS and text.endswith(".0"):
            text = text[:-2]
        number: int | float | str = text
    else:
        number = _whole(value, kind)
    if lang == "zh":
        return f"{number}{w.unit_zh}"
    if short or not w.many_en:
        return str(number)
    return f"{number} {_noun(w, number if isinstance(number, int) else 2)}"


def value_words(w: Wording, value: Any, lang: Lang, *, label: Any = None) -> str:
    """The value of the slot ``{v}`` (not for a missing value: that has its own sentence)."""
    if w.kind is ValueKind.FLAG:
        yes = bool(value)
        return ("是" if yes else "否") if lang == "zh" else ("yes" if yes else "no")
    if w.kind is ValueKind.CATEGORY:
        return label(lang) if label is not None else str(value)
    return number_words(w, float(value), lang)


def typical_words(w: Wording, value: Any, typical: Typical | None, lang: Lang) -> str | None:
    """The stage's typical value as the comparison writes it ("0次", "23%"), or None when unknown.

    For a missing value: the share of the stage without one; for a flag or a category: the share
    with the person's value; for a number: the median.
    """
    if typical is None:
        return None
    if is_missing(value):
        return percent(typical.missing) if typical.missing else None
    if w.kind in (ValueKind.FLAG, ValueKind.CATEGORY):
        key = ("1" if bool(value) else "0") if w.kind is ValueKind.FLAG else str(value)
        return percent(typical.shares[key]) if key in typical.shares else None
    if typical.median is None or math.isnan(typical.median):
        return None
    return number_words(w, typical.median, lang, short=True)


def comparison(w: Wording, value: Any, typical: Typical | None, lang: Lang) -> str:
    """ "（同阶段一般为0次）" / " (typical: 0)", or "" when the model holds no typical value."""
    text = typical_words(w, value, typical, lang)
    if text is None:
        return ""
    zh = lang == "zh"
    if is_missing(value):
        return f"（同阶段{text}同样无记录）" if zh else f" (as for {text} at this stage)"
    if w.kind is ValueKind.FLAG:
        yes_no = ("是" if bool(value) else "否") if zh else ("yes" if bool(value) else "no")
        return f"（同阶段{text}为{yes_no}）" if zh else f" ({text} at this stage: {yes_no})"
    if w.kind is ValueKind.CATEGORY:
        return f"（同阶段{text}为此类）" if zh else f" ({text} at this stage)"
    if is_zero_count(w, value):  # "无前科（同阶段一般有1次）"
        return f"（同阶段一般有{text}）" if zh else f" (typical: {text})"
    return f"（同阶段一般为{text}）" if zh else f" (typical: {text})"


def equals_typical(w: Wording, value: Any, typical: Typical | None, lang: Lang = "zh") -> bool:
    """The person's value reads the same as the stage's typical one: then it is no reason at all."""
    if typical is None or is_missing(value) or w.kind in (ValueKind.FLAG, ValueKind.CATEGORY):
        return False
    if typical.median is None or math.isnan(typical.median):
        return False
    return number_words(w, float(value), lang, short=True) == number_words(w, typical.median, lang, short=True)


_WINDOW_ZH = re.compile(r"^(近\d+天|矫正以来|入矫以来)(.*)$")


def zero_sentence(w: Wording, lang: Lang) -> str:
    """The sentence of a count of zero, in its own words: "无前科", "近90天无重大家庭变故",
    "no prior convictions" (never "有前科0次" or "0 prior convictions")."""
    if lang == "en":
        return w.en.replace("{v}", f"no {w.many_en}" if w.many_en else "none")
    body = w.zh.replace("{v}", "").removesuffix("共")
    if body.startswith("有"):
        return "无" + body[1:]
    window = _WINDOW_ZH.match(body)
    if window:
        return f"{window.group(1)}无{window.group(2)}"
    return "无" + body


def is_zero_count(w: Wording, value: Any) -> bool:
    """A count that rounds to zero (it has its own sentence)."""
    return w.kind is ValueKind.COUNT and not is_missing(value) and round(float(value)) == 0


def render(w: Wording, value: Any, lang: Lang, *, typical: Typical | None = None, label: Any = None) -> str:
    """The whole sentence of one value, with the comparison when ``typical`` is given."""
    if is_missing(value):
        base = w.missing_zh if lang == "zh" else w.missing_en
    elif is_zero_count(w, value):
        base = zero_sentence(w, lang)
    else:
        base = (w.zh if lang == "zh" else w.en).format(v=value_words(w, value, lang, label=label))
    return base + comparison(w, value, typical, lang)


# ----------------------------------------------------------------------------- the reader's checks
_PLURAL_NOUNS = {
    "convictions": "conviction",
    "supervisions": "supervision",
    "days": "day",
    "months": "month",
    "reports": "report",
    "absences": "absence",
    "returns": "return",
    "violations": "violation",
    "warnings": "warning",
    "penalties": "penalty",
    "sessions": "session",
    "tests": "test",
    "commendations": "commendation",
    "changes": "change",
    "disputes": "dispute",
    "grades": "grade",
    "years": "year",
    "points": "point",
    "times": "time",
    "threats": "threat",
    "petitions": "petition",
}
_SINGULAR_NOUNS = {v: k for k, v in _PLURAL_NOUNS.items()}
_NUMBER_THEN_WORDS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?) ((?:[a-z'-]+ ?){1,4})")
_NOUN_PHRASE_ENDS = {"since", "in", "of", "per", "under", "ago", "than", "at", "on", "before", "after", "for"}


def _plural_problems(text: str) -> list[str]:
    problems = []
    for number, words in _NUMBER_THEN_WORDS.findall(text):
        phrase = []
        for word in words.split():
            if word in _NOUN_PHRASE_ENDS:
                break
            phrase.append(word)
        noun = next((word for word in phrase if word in _PLURAL_NOUNS or word in _SINGULAR_NOUNS), None)
        if noun is None:
            continue
        if number == "1" and noun in _PLURAL_NOUNS:
            problems.append(f"plural after 1: '1 {words.strip()}'")
        elif number != "1" and noun in _SINGULAR_NOUNS and noun not in _PLURAL_NOUNS:
            problems.append(f"singular after {number}: '{number} {words.strip()}'")
    return problems


def check_sentence(text: str, lang: Lang, *, decimals: bool = False, percent: bool = False) -> list[str]:
    """What a reader would find wrong with a reason sentence (empty list: nothing).

    ``decimals``: the feature's unit allows one decimal (rates, points); otherwise every number
    must be whole. ``percent``: the feature is a share of the term and must read as a percentage.
    """
    problems = []
    if re.search(r"[{}]", text) or "nan" in text.lower().split() or "None" in text:
        problems.append("placeholder or raw missing value")
    if re.search(r"无记录[天次分岁个%]|[多少为]无记录|\bnone\b|none recorded", text):
        problems.append("none in a number slot")
    if re.search(r"[-−]\s?\d", text):
        problems.append("minus before a count")
    if re.search(r"\d\.\d{2,}|\d[eE][+-]?\d", text):
        problems.append("too many decimals")
    elif not decimals and re.search(r"\d\.\d", text):
        problems.append("decimal in a whole number")
    if percent and re.search(r"\d", text) and "%" not in text:
        problems.append("share not in percent")
    if lang == "en":
        problems += _plural_problems(text)
    elif re.search(r"[a-zA-Z]{3,}", text):
        problems.append("English word in a Chinese sentence")
    return problems


def typical_values(frame: Any, names: list[str], kinds: Mapping[str, str]) -> dict[str, Typical]:
    """The typical value of each feature in ``frame`` (the training rows): median or shares, and share missing.

    ``kinds`` maps a name to the catalog kind ("numeric", "flag" or "categorical").
    """
    import numpy as np
    import pandas as pd

    out = {}
    for name in names:
        column = pd.Series(frame[name])
        n = len(column)
        present = column.notna()
        missing = float(1 - present.mean()) if n else None
        if kinds[name] == "numeric":
            values = column[present].astype(float)
            out[name] = Typical(median=float(np.median(values)) if len(values) else None, missing=missing)
        else:
            flag = kinds[name] == "flag"
            keys = [("1" if bool(v) else "0") if flag else str(v) for v in column[present]]
            counts = pd.Series(keys, dtype=object).value_counts()
            shares = {str(k): float(c) / n for k, c in counts.items()} if n else {}
            out[name] = Typical(missing=missing, shares=shares)
    return out
