"""The feature catalog: one entry per feature the pipeline emits.

Each :class:`FeatureSpec` carries the column name, a Chinese and an English label, the wording of
its reason sentence in both languages (:class:`Wording`: the kind of value, the sentence, the
English noun in singular and plural, and a sentence of its own for a missing value), the stages
it exists for and the direction in which it should move the risk (+1 raises, -1 lowers, 0 no
prior), which the models use as monotone constraints. Later parts (models, explanations, the
service) read names and texts from here and nowhere else.

``PROTECTED_ATTRIBUTES`` (sex, household registration) are in the catalog so that records and
fairness tables keep them, but they are model inputs only when a model's settings turn them on,
and never a reason shown to a caseworker (design.md, "Protected attributes").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from features._wording import (
    Typical,
    ValueKind,
    Wording,
    check_sentence,
    equals_typical,
    is_missing,
    render,
    typical_values,
    typical_words,
    value_words,
)
from features.vocab import CATEGORICAL_COLUMNS, INTAKE_FLAGS, EventType, Lang, Stage

__all__ = [
    "CATALOG",
    "EVENT_FAMILIES",
    "PROTECTED_ATTRIBUTES",
    "FeatureSpec",
    "Typical",
    "ValueKind",
    "Wording",
    "categorical_features",
    "check_sentence",
    "features_for",
    "model_features",
    "monotone_directions",
    "no_record_values",
    "stage_typical_values",
]

Kind = Literal["numeric", "categorical", "flag"]
ALL_STAGES = frozenset(Stage)
SUPERVISED = frozenset({Stage.MIDTERM, Stage.RELEASE})
TERM = None  # window "since supervision start"
#: the models read "no such event on record" as an event this many days ago (ten years), and any older one
#: the same: the lowest-risk value of a days-since feature
NEVER_DAYS = 3653.0

#: sex and household registration: kept in records and fairness tables, model inputs only when turned on
PROTECTED_ATTRIBUTES: tuple[str, ...] = ("sex", "local")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its name, labels, reason wording, stages and expected direction."""

    name: str
    zh: str
    en: str
    wording: Wording
    stages: frozenset[Stage]
    direction: int = 0
    kind: Kind = "numeric"
    fact: str = ""  # the fact it describes: an event family's features share one (one fact, one reason)
    no_record: float | None = None  # what "nothing on record" means to a model: the feature's lowest-risk value

    def is_no_record(self, value: Any) -> bool:
        """The value says nothing adverse is on record: missing, or at (or past) the lowest-risk value.

        Only for features of adverse facts (``no_record`` set); such a value never raises risk, and a
        reason never says it does (design.md, "Face validity").
        """
        if self.no_record is None:
            return False
        if is_missing(value):
            return True
        x = float(value)
        return x <= self.no_record if self.direction > 0 else x >= self.no_record

    def label(self, lang: Lang = "en") -> str:
        return self.zh if lang == "zh" else self.en

    @property
    def fact_key(self) -> str:
        """What the feature is a view of: features of one fact (an event family's counts and recency)
        give at most one reason between them."""
        return self.fact or self.name

    def equals_typical(self, value: Any, typical: Typical | None) -> bool:
        """The person's value reads the same as the stage's typical value (then it is no reason)."""
        return equals_typical(self.wording, value, typical)

    def describe(self, value: Any, lang: Lang = "en", *, typical: Typical | None = None) -> str:
        """The reason sentence for ``value``; with ``typical``, compared with the stage's typical person."""
        return render(self.wording, value, lang, typical=typical, label=self._category_label(value))

    def value_text(self, value: Any, lang: Lang = "en") -> str:
        """The value alone, in natural units ("3次", "3 missed reports", "50%"); "无记录"/"none" if missing."""
        if is_missing(value):
            return "无记录" if lang == "zh" else "none recorded"
        return value_words(self.wording, value, lang, label=self._category_label(value))

    def typical_text(self, value: Any, typical: Typical | None, lang: Lang = "en") -> str | None:
        """The stage's typical value (median, or the share with the person's value) in words, if known."""
        return typical_words(self.wording, value, typical, lang)

    def _category_label(self, value: Any) -> Any:
        if self.kind != "categorical" or is_missing(value):
            return None
        return CATEGORICAL_COLUMNS[self.name](str(value)).label


@dataclass(frozen=True)
class EventFamily:
    """Event types counted together, with the windows and recency features they get.

    No "trend" (recent minus earlier count): an event added to the earlier window would lower it, so no
    direction can bind it and one more adverse event could lower the risk (design.md, "Face validity").
    """

    name: str
    event_types: tuple[EventType, ...]
    zh: str
    en: str
    one_en: str  # the English noun after "1" (``en`` is the plural)
    stages: frozenset[Stage]
    windows: tuple[int | None, ...]
    recency: bool = True
    direction: int = 1


EVENT_FAMILIES: tuple[EventFamily, ...] = (
    EventFamily(
        "family_change",
        (EventType.FAMILY_DIVORCE, EventType.FAMILY_DEATH, EventType.FAMILY_CONFLICT),
        "重大家庭变故",
        "major family changes",
        "major family change",
        ALL_STAGES,
        (90, 365, TERM),
    ),
    EventFamily(
        "instability",
        (EventType.RESIDENCE_CHANGE, EventType.JOB_CHANGE, EventType.JOB_LOSS),
        "居住或工作变动",
        "changes of residence or job",
        "change of residence or job",
        ALL_STAGES,
        (90, 365, TERM),
        recency=False,
    ),
    EventFamily(
        "grievance",
        (EventType.DISPUTE, EventType.PETITION, EventType.THREAT),
        "矛盾纠纷、上访或扬言滋事",
        "disputes, petitions or threats",
        "dispute, petition or threat",
        ALL_STAGES,
        (90, 365, TERM),
        recency=False,
    ),
    EventFamily(
        "report_missed",
        (EventType.REPORT_MISSED, EventType.REPORT_LATE),
        "未按时报到或迟到",
        "missed or late reports",
        "missed or late report",
        SUPERVISED,
        (30, 90, 180, TERM),
    ),
    EventFamily(
        "absence",
        (EventType.UNAUTHORISED_ABSENCE, EventType.OVERDUE_RETURN),
        "未经批准外出或逾期未归",
        "unauthorised absences or overdue returns",
        "unauthorised absence or overdue return",
        SUPERVISED,
        (30, 90, 180, TERM),
    ),
    EventFamily(
        "em_violation",
        (EventType.EM_BOUNDARY, EventType.EM_SEPARATION),
        "电子监管越界或人机分离",
        "electronic-monitoring violations",
        "electronic-monitoring violation",
        SUPERVISED,
        (30, 90, 180, TERM),
    ),
    EventFamily("warning", (EventType.WARNING,), "警告", "warnings", "warning", SUPERVISED, (90, TERM)),
    EventFamily(
        "police_penalty",
        (EventType.POLICE_PENALTY,),
        "治安管理处罚",
        "police penalties",
        "police penalty",
        SUPERVISED,
        (90, TERM),
    ),
    EventFamily(
        "education_missed",
        (EventType.EDUCATION_MISSED,),
        "缺席教育学习",
        "missed education sessions",
        "missed education session",
        SUPERVISED,
        (90, TERM),
        recency=False,
    ),
    EventFamily(
        "drug_positive",
        (EventType.DRUG_TEST_POSITIVE,),
        "尿检阳性",
        "positive drug tests",
        "positive drug test",
        SUPERVISED,
        (90, TERM),
    ),
    EventFamily(
        "commendation",
        (EventType.COMMENDATION,),
        "表扬",
        "commendations",
        "commendation",
        SUPERVISED,
        (TERM,),
        recency=False,
        direction=-1,
    ),
)

#: event families whose events count as compliance violations (violations_term, violations_per_month)
VIOLATION_FAMILIES = ("report_missed", "absence", "em_violation", "warning", "police_penalty")

GRADE_VALUES = {EventType.GRADE_UNQUALIFIED: 0.0, EventType.GRADE_QUALIFIED: 1.0, EventType.GRADE_GOOD: 2.0}


def window_suffix(window: int | None) -> str:
    return "term" if window is None else f"{window}d"


def _window_texts(window: int | None) -> tuple[str, str, str, str]:
    if window is None:
        return "矫正以来", "since supervision began", "（矫正以来）", "since supervision began"
    return f"近{window}天", f"in the last {window} days", f"（近{window}天）", f"last {window} days"


def _family_specs(fam: EventFamily) -> list[FeatureSpec]:
    specs = []
    for window in fam.windows:
        zh_when, en_when, zh_tag, en_tag = _window_texts(window)
        stages = fam.stages & SUPERVISED if window is None else fam.stages
        wording = Wording(
            ValueKind.COUNT,
            f"{zh_when}{fam.zh}{{v}}",
            f"{{v}} {en_when}",
            f"{zh_when}无{fam.zh}记录",
            f"no {fam.en} on record {en_when}",
            unit_zh="次",
            one_en=fam.one_en,
            many_en=fam.en,
        )
        specs.append(
            FeatureSpec(
                f"{fam.name}_{window_suffix(window)}",
                f"{fam.zh}次数{zh_tag}",
                f"{fam.en} ({en_tag})",
                wording,
                stages,
                fam.direction,
                fact=fam.name,
                no_record=0.0 if fam.direction > 0 else None,
            )
        )
    if fam.recency:
        wording = Wording(
            ValueKind.DAYS,
            f"最近一次{fam.zh}在{{v}}前",
            f"last {fam.one_en} {{v}} ago",
            f"无{fam.zh}记录",
            f"no {fam.en} on record",
            unit_zh="天",
            one_en="day",
            many_en="days",
        )
        specs.append(
            FeatureSpec(
                f"{fam.name}_days_since",
                f"距最近一次{fam.zh}天数",
                f"days since the last of {fam.en}",
                wording,
                fam.stages,
                -fam.direction,
                fact=fam.name,
                no_record=NEVER_DAYS if fam.direction > 0 else None,
            )
        )
    return specs


def _label_wording(kind: ValueKind, zh: str, en: str) -> Wording:
    """ "label：value" wording of a flag or a category."""
    return Wording(kind, f"{zh}：{{v}}", f"{en}: {{v}}", f"{zh}：未记录", f"{en}: not recorded")


def _static_specs() -> list[FeatureSpec]:
    s, K = ALL_STAGES, ValueKind
    specs = [
        FeatureSpec(
            "age",
            "评估时年龄",
            "age at assessment",
            Wording(K.AGE, "年龄{v}", "aged {v}", "年龄未记录", "age not recorded", unit_zh="岁"),
            s,
            -1,
        ),
        FeatureSpec(
            "sentence_months",
            "刑期（月）",
            "sentence length (months)",
            Wording(
                K.MONTHS,
                "刑期{v}",
                "sentence of {v}",
                "刑期未记录",
                "sentence length not recorded",
                unit_zh="个月",
                one_en="month",
                many_en="months",
            ),
            s,
            0,
        ),
        FeatureSpec(
            "term_months",
            "矫正期限（月）",
            "supervision term (months)",
            Wording(
                K.MONTHS,
                "矫正期限{v}",
                "supervision term of {v}",
                "矫正期限未记录",
                "supervision term not recorded",
                unit_zh="个月",
                one_en="month",
                many_en="months",
            ),
            s,
            0,
        ),
        FeatureSpec(
            "prior_convictions",
            "前科次数",
            "prior convictions",
            Wording(
                K.COUNT,
                "有前科{v}",
                "{v}",
                "前科情况未记录",
                "prior convictions not recorded",
                unit_zh="次",
                one_en="prior conviction",
                many_en="prior convictions",
            ),
            s,
            1,
        ),
        FeatureSpec(
            "prior_supervisions",
            "既往社区矫正次数",
            "prior community supervisions",
            Wording(
                K.COUNT,
                "既往社区矫正{v}",
                "{v}",
                "既往社区矫正情况未记录",
                "prior community supervisions not recorded",
                unit_zh="次",
                one_en="prior community supervision",
                many_en="prior community supervisions",
            ),
            s,
            1,
        ),
        FeatureSpec(
            "local", "本地户籍", "local resident", _label_wording(K.FLAG, "本地户籍", "local resident"), s, 0, "flag"
        ),
    ]
    cat_labels = {
        "sex": ("性别", "sex"),
        "education": ("文化程度", "education"),
        "employment": ("入矫时就业状况", "employment at intake"),
        "marital": ("婚姻状况", "marital status"),
        "supervision_type": ("矫正类别", "supervision type"),
        "offence": ("罪名类别", "offence category"),
    }
    for name, (zh, en) in cat_labels.items():
        specs.append(FeatureSpec(name, zh, en, _label_wording(K.CATEGORY, zh, en), s, 0, "categorical"))
    for flag, (zh, en) in INTAKE_FLAGS.items():
        direction = 0 if flag == "flag_serious_illness" else 1
        specs.append(FeatureSpec(flag, zh, en, _label_wording(K.FLAG, zh, en), s, direction, "flag"))
    return specs


def _count(
    zh: str,
    one_en: str,
    many_en: str,
    missing_zh: str,
    missing_en: str,
    *,
    en: str = "{v}",
    kind: ValueKind = ValueKind.COUNT,
) -> Wording:
    return Wording(kind, zh, en, missing_zh, missing_en, unit_zh="次", one_en=one_en, many_en=many_en)


def _supervision_specs() -> list[FeatureSpec]:
    s, K = SUPERVISED, ValueKind
    no_grade_zh, no_grade_en = "尚无季度考核记录", "no quarterly grade on record yet"
    return [
        FeatureSpec(
            "days_since_start",
            "已矫正天数",
            "days under supervision",
            Wording(
                K.DAYS,
                "已矫正{v}",
                "{v} under supervision",
                "矫正天数未记录",
                "days under supervision not recorded",
                unit_zh="天",
                one_en="day",
                many_en="days",
            ),
            s,
            0,
        ),
        FeatureSpec(
            "share_served",
            "已完成矫正期比例",
            "share of the term served",
            Wording(
                K.SHARE,
                "已完成矫正期的{v}",
                "{v} of the supervision term served",
                "已完成矫正期比例未记录",
                "share of the term served not recorded",
            ),
            s,
            0,
        ),
        FeatureSpec(
            "grade_latest",
            "最近一次季度考核等级",
            "latest quarterly grade",
            Wording(K.GRADE, "最近一次季度考核为{v}", "latest quarterly grade: {v}", no_grade_zh, no_grade_en),
            s,
            -1,
        ),
        FeatureSpec(
            "grade_unqualified_n",
            "季度考核不合格次数",
            "unqualified quarterly grades",
            _count(
                "季度考核不合格{v}",
                "unqualified quarterly grade",
                "unqualified quarterly grades",
                no_grade_zh,
                no_grade_en,
            ),
            s,
            1,
        ),
        FeatureSpec(
            "grade_good_n",
            "季度考核良好次数",
            "good quarterly grades",
            _count("季度考核良好{v}", "good quarterly grade", "good quarterly grades", no_grade_zh, no_grade_en),
            s,
            -1,
        ),
        FeatureSpec(
            "violations_term",
            "矫正以来违规总次数",
            "compliance violations since supervision began",
            _count(
                "矫正以来违规（未按时报到、擅自外出、电子监管违规、警告、治安处罚）共{v}",
                "compliance violation",
                "compliance violations",
                "矫正以来无违规记录",
                "no compliance violations on record since supervision began",
                en="{v} since supervision began (reports, absences, monitoring, warnings, police penalties)",
            ),
            s,
            1,
            fact="violations",
        ),
        FeatureSpec(
            "violations_per_month",
            "月均违规次数",
            "compliance violations per month under supervision",
            _count(
                "矫正以来月均违规{v}",
                "compliance violations",
                "compliance violations",
                "矫正以来无违规记录",
                "no compliance violations on record since supervision began",
                en="{v} per month under supervision",
                kind=K.RATE,
            ),
            s,
            1,
            fact="violations",
        ),
        FeatureSpec(
            "points_latest",
            "最近月度量化积分",
            "latest monthly points",
            Wording(
                K.POINTS,
                "最近月度量化积分{v}",
                "latest monthly points score: {v}",
                "尚无月度量化积分记录",
                "no monthly points score on record yet",
                unit_zh="分",
            ),
            s,
            -1,
        ),
        FeatureSpec(
            "points_mean_90d",
            "近90天平均量化积分",
            "mean monthly points (last 90 days)",
            Wording(
                K.POINTS,
                "近90天平均量化积分{v}",
                "mean monthly points score over the last 90 days: {v}",
                "近90天无月度量化积分记录",
                "no monthly points on record in the last 90 days",
                unit_zh="分",
            ),
            s,
            -1,
        ),
    ]


#: "nothing on record" of the other features of adverse facts (event-family features set their own): no prior
#: conviction or supervision, no violation, no unqualified grade, and a latest grade no worse than "good"
_NO_RECORD = {
    "prior_convictions": 0.0,
    "prior_supervisions": 0.0,
    "violations_term": 0.0,
    "violations_per_month": 0.0,
    "grade_unqualified_n": 0.0,
    "grade_latest": max(GRADE_VALUES.values()),
}


def _build_catalog() -> dict[str, FeatureSpec]:
    specs = _static_specs() + _supervision_specs()
    for fam in EVENT_FAMILIES:
        specs += _family_specs(fam)
    catalog = {}
    for spec in specs:
        if spec.name in _NO_RECORD:
            spec = replace(spec, no_record=_NO_RECORD[spec.name])
        elif spec.kind == "flag" and spec.direction > 0:  # an adverse intake flag: not recorded reads as "no"
            spec = replace(spec, no_record=0.0)
        catalog[spec.name] = spec
    return catalog


CATALOG: dict[str, FeatureSpec] = _build_catalog()


def features_for(stage: Stage | str) -> list[str]:
    """Feature names of ``stage`` in catalog order (the column order of the feature frame)."""
    stage = Stage(stage)
    return [name for name, spec in CATALOG.items() if stage in spec.stages]


def categorical_features(stage: Stage | str) -> list[str]:
    return [n for n in features_for(stage) if CATALOG[n].kind == "categorical"]


def model_features(stage: Stage | str, *, protected_inputs: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The model inputs of ``stage``: its features without the protected attributes not turned on."""
    unknown = set(protected_inputs) - set(PROTECTED_ATTRIBUTES)
    if unknown:
        raise ValueError(f"not protected attributes: {sorted(unknown)}; known: {list(PROTECTED_ATTRIBUTES)}")
    return [n for n in features_for(stage) if n not in PROTECTED_ATTRIBUTES or n in protected_inputs]


def no_record_values(names: list[str]) -> np.ndarray:
    """Each feature's "nothing on record" value (:attr:`FeatureSpec.no_record`), NaN where it has none."""
    return np.array([np.nan if CATALOG[n].no_record is None else CATALOG[n].no_record for n in names], dtype=float)


def monotone_directions(stage: Stage | str) -> dict[str, int]:
    """The expected direction of each of the stage's features (+1, -1 or 0)."""
    return {n: CATALOG[n].direction for n in features_for(stage)}


def stage_typical_values(frame: Any, names: list[str]) -> dict[str, Typical]:
    """The typical person of the stage in ``frame`` (training rows): median, or share for flags and categories."""
    return typical_values(frame, names, {n: CATALOG[n].kind for n in names})
