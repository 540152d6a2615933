"""The feature catalog: one entry per feature the pipeline emits.

Each :class:`FeatureSpec` carries the column name, a Chinese and an English label, a
plain-language template for explanations in both languages, the stages it exists for and the
direction in which it should move the risk (+1 raises, -1 lowers, 0 no prior), which the
models use as monotone constraints. Later parts (models, explanations, the service) read names
and texts from here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from features.vocab import CATEGORICAL_COLUMNS, INTAKE_FLAGS, EventType, Lang, Stage

Kind = Literal["numeric", "categorical", "flag"]
ALL_STAGES = frozenset(Stage)
SUPERVISED = frozenset({Stage.MIDTERM, Stage.RELEASE})
TERM = None  # window "since supervision start"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its name, labels, explanation templates, stages and expected direction."""

    name: str
    zh: str
    en: str
    template_zh: str
    template_en: str
    stages: frozenset[Stage]
    direction: int = 0
    kind: Kind = "numeric"
    unit_zh: str = ""
    unit_en: str = ""

    def label(self, lang: Lang = "en") -> str:
        return self.zh if lang == "zh" else self.en

    def describe(self, value, lang: Lang = "en") -> str:
        """The plain-language sentence for this feature at ``value`` (templates use ``{value}``)."""
        return self.sentence(format_value(self, value, lang), lang)

    def sentence(self, value_text: str, lang: Lang = "en") -> str:
        """:meth:`describe` from the value already written by :func:`format_value`."""
        template = self.template_zh if lang == "zh" else self.template_en
        return template.format(value=value_text)


def format_value(spec: FeatureSpec, value, lang: Lang = "en") -> str:
    """A person's value as a caseworker reads it: category labels, yes/no, rounded numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "无记录" if lang == "zh" else "none recorded"
    if spec.kind == "categorical":
        vocab = CATEGORICAL_COLUMNS[spec.name]
        return vocab(str(value)).label(lang)
    if spec.kind == "flag":
        yes = bool(value)
        return ("是" if yes else "否") if lang == "zh" else ("yes" if yes else "no")
    number = float(value)
    return str(round(number)) if abs(number - round(number)) < 1e-9 else f"{number:.1f}"


@dataclass(frozen=True)
class EventFamily:
    """Event types counted together, with the windows, recency and trend features they get."""

    name: str
    event_types: tuple[EventType, ...]
    zh: str
    en: str
    stages: frozenset[Stage]
    windows: tuple[int | None, ...]
    recency: bool = True
    trend: bool = False
    direction: int = 1


EVENT_FAMILIES: tuple[EventFamily, ...] = (
    EventFamily("family_change", (EventType.FAMILY_DIVORCE, EventType.FAMILY_DEATH, EventType.FAMILY_CONFLICT),
                "重大家庭变故", "major family changes", ALL_STAGES, (90, 365, TERM)),
    EventFamily("instability", (EventType.RESIDENCE_CHANGE, EventType.JOB_CHANGE, EventType.JOB_LOSS),
                "居住或工作变动", "changes of residence or job", ALL_STAGES, (90, 365, TERM), recency=False),
    EventFamily("grievance", (EventType.DISPUTE, EventType.PETITION, EventType.THREAT),
                "矛盾纠纷、上访或扬言滋事", "disputes, petitions or threats", ALL_STAGES, (90, 365, TERM),
                recency=False),
    EventFamily("report_missed", (EventType.REPORT_MISSED, EventType.REPORT_LATE),
                "未按时报到或迟到", "missed or late reports", SUPERVISED, (30, 90, 180, TERM), trend=True),
    EventFamily("absence", (EventType.UNAUTHORISED_ABSENCE, EventType.OVERDUE_RETURN),
                "未经批准外出或逾期未归", "unauthorised absences or overdue returns", SUPERVISED,
                (30, 90, 180, TERM), trend=True),
    EventFamily("em_violation", (EventType.EM_BOUNDARY, EventType.EM_SEPARATION),
                "电子监管越界或人机分离", "electronic-monitoring violations", SUPERVISED,
                (30, 90, 180, TERM), trend=True),
    EventFamily("warning", (EventType.WARNING,), "警告", "warnings", SUPERVISED, (90, TERM)),
    EventFamily("police_penalty", (EventType.POLICE_PENALTY,), "治安管理处罚", "police penalties",
                SUPERVISED, (90, TERM)),
    EventFamily("education_missed", (EventType.EDUCATION_MISSED,), "缺席教育学习", "missed education sessions",
                SUPERVISED, (90, TERM), recency=False),
    EventFamily("drug_positive", (EventType.DRUG_TEST_POSITIVE,), "尿检阳性", "positive drug tests",
                SUPERVISED, (90, TERM)),
    EventFamily("commendation", (EventType.COMMENDATION,), "表扬", "commendations", SUPERVISED, (TERM,),
                recency=False, direction=-1),
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
        specs.append(FeatureSpec(
            f"{fam.name}_{window_suffix(window)}", f"{fam.zh}次数{zh_tag}", f"{fam.en} ({en_tag})",
            f"{zh_when}{fam.zh}{{value}}次", f"{fam.en}: {{value}} {en_when}", stages, fam.direction))
    if fam.recency:
        specs.append(FeatureSpec(
            f"{fam.name}_days_since", f"距最近一次{fam.zh}天数", f"days since the last of {fam.en}",
            f"距最近一次{fam.zh}{{value}}天", f"{{value}} days since the last of {fam.en}", fam.stages,
            -fam.direction))
    if fam.trend:
        specs.append(FeatureSpec(
            f"{fam.name}_trend", f"{fam.zh}趋势（近90天减前90天）",
            f"trend of {fam.en} (last 90 days minus the 90 before)",
            f"近90天{fam.zh}比前90天多{{value}}次",
            f"{fam.en}: {{value}} more in the last 90 days than in the 90 before",
            fam.stages, fam.direction))
    return specs


def _static_specs() -> list[FeatureSpec]:
    s = ALL_STAGES
    specs = [
        FeatureSpec("age", "评估时年龄", "age at assessment", "年龄{value}岁", "aged {value}", s, -1),
        FeatureSpec("sentence_months", "刑期（月）", "sentence length (months)", "刑期{value}个月",
                    "sentence of {value} months", s, 0),
        FeatureSpec("term_months", "矫正期限（月）", "supervision term (months)", "矫正期限{value}个月",
                    "supervision term of {value} months", s, 0),
        FeatureSpec("prior_convictions", "前科次数", "prior convictions", "有前科{value}次",
                    "{value} prior convictions", s, 1),
        FeatureSpec("prior_supervisions", "既往社区矫正次数", "prior community supervisions",
                    "既往社区矫正{value}次", "{value} prior community supervisions", s, 1),
        FeatureSpec("local", "本地户籍", "local resident", "本地户籍：{value}", "local resident: {value}", s, 0,
                    "flag"),
    ]
    cat_labels = {
        "sex": ("性别", "sex"), "education": ("文化程度", "education"),
        "employment": ("入矫时就业状况", "employment at intake"), "marital": ("婚姻状况", "marital status"),
        "supervision_type": ("矫正类别", "supervision type"), "offence": ("罪名类别", "offence category"),
    }
    for name, (zh, en) in cat_labels.items():
        specs.append(FeatureSpec(name, zh, en, f"{zh}：{{value}}", f"{en}: {{value}}", s, 0, "categorical"))
    for flag, (zh, en) in INTAKE_FLAGS.items():
        direction = 0 if flag == "flag_serious_illness" else 1
        specs.append(FeatureSpec(flag, zh, en, f"{zh}：{{value}}", f"{en}: {{value}}", s, direction, "flag"))
    return specs


def _supervision_specs() -> list[FeatureSpec]:
    s = SUPERVISED
    return [
        FeatureSpec("days_since_start", "已矫正天数", "days under supervision", "已矫正{value}天",
                    "{value} days under supervision", s, 0),
        FeatureSpec("share_served", "已完成矫正期比例", "share of the term served", "已完成矫正期的{value}",
                    "{value} of the term served", s, 0),
        FeatureSpec("grade_latest", "最近一次季度考核等级（0不合格,1合格,2良好）",
                    "latest quarterly grade (0 unqualified, 1 qualified, 2 good)",
                    "最近一次季度考核等级{value}（0不合格,1合格,2良好）",
                    "latest quarterly grade {value} (0 unqualified, 1 qualified, 2 good)", s, -1),
        FeatureSpec("grade_unqualified_n", "季度考核不合格次数", "unqualified quarterly grades",
                    "季度考核不合格{value}次", "{value} unqualified quarterly grades", s, 1),
        FeatureSpec("grade_good_n", "季度考核良好次数", "good quarterly grades", "季度考核良好{value}次",
                    "{value} good quarterly grades", s, -1),
        FeatureSpec("violations_term", "矫正以来违规总次数", "compliance violations since supervision began",
                    "矫正以来违规（未按时报到、擅自外出、电子监管违规、警告、治安处罚）共{value}次",
                    "{value} compliance violations since supervision began (reports, absences, monitoring, "
                    "warnings, police penalties)", s, 1),
        FeatureSpec("violations_per_month", "月均违规次数", "compliance violations per month under supervision",
                    "矫正以来月均违规{value}次", "{value} compliance violations per month under supervision", s, 1),
        FeatureSpec("points_latest", "最近月度量化积分", "latest monthly points", "最近月度量化积分{value}分",
                    "latest monthly points score {value}", s, -1),
        FeatureSpec("points_mean_90d", "近90天平均量化积分", "mean monthly points (last 90 days)",
                    "近90天平均量化积分{value}分", "mean monthly points over the last 90 days {value}", s, -1),
    ]


def _build_catalog() -> dict[str, FeatureSpec]:
    specs = _static_specs() + _supervision_specs()
    for fam in EVENT_FAMILIES:
        specs += _family_specs(fam)
    return {spec.name: spec for spec in specs}


CATALOG: dict[str, FeatureSpec] = _build_catalog()


def features_for(stage: Stage | str) -> list[str]:
    """Feature names of ``stage`` in catalog order (the column order of the feature frame)."""
    stage = Stage(stage)
    return [name for name, spec in CATALOG.items() if stage in spec.stages]


def categorical_features(stage: Stage | str) -> list[str]:
    return [n for n in features_for(stage) if CATALOG[n].kind == "categorical"]


def monotone_directions(stage: Stage | str) -> dict[str, int]:
    """The expected direction of each of the stage's features (+1, -1 or 0)."""
    return {n: CATALOG[n].direction for n in features_for(stage)}
