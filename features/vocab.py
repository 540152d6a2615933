"""Controlled vocabularies of the canonical tables, each value with a Chinese and an English label.

The categories follow ``shared/domain.md``. Values are lower-case ASCII codes (what is stored and
sent over the wire); :func:`label` gives the label shown to a caseworker.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self

Lang = Literal["zh", "en"]


class Labelled(StrEnum):
    """A StrEnum whose members carry ``zh`` and ``en`` labels."""

    zh: str
    en: str

    # The defaults only let a lookup by code, ``Stage("intake")``, type-check: a member must give all three.
    def __new__(cls, value: str, zh: str = "", en: str = "") -> Self:
        if not (zh and en):
            raise TypeError(f"{cls.__name__} member {value!r} needs a zh and an en label")
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.zh = zh
        obj.en = en
        return obj

    def label(self, lang: Lang = "en") -> str:
        """The label of this value in ``lang`` ("zh" or "en")."""
        return self.zh if lang == "zh" else self.en

    @classmethod
    def codes(cls) -> list[str]:
        """All codes in declaration order (the fixed category order used by the models)."""
        return [m.value for m in cls]


class Stage(Labelled):
    """The three assessments (design.md, "Stages")."""

    INTAKE = "intake", "入矫评估", "intake assessment"
    MIDTERM = "midterm", "中期评估", "mid-term assessment"
    RELEASE = "release", "解矫评估", "release assessment"


#: default label horizon H of each stage in months: "re-offended within H months after the assessment"
#: (design.md, "Outcome"); the synthetic cohort's oracle is written for these
DEFAULT_HORIZON_MONTHS: dict[Stage, float] = {Stage.INTAKE: 12, Stage.MIDTERM: 12, Stage.RELEASE: 24}


def assessment_offset_days(stage: Stage | str, term_days: Any) -> Any:
    """Days from supervision start to the stage's assessment date (design.md, "Stages").

    intake: 0 (the supervision start); mid-term: half the term, rounded down to a whole day (the
    midpoint); release: the whole term (the supervision end). ``term_days`` is a whole number of
    days or an integer array of them; the one rule of every place that needs an assessment date.
    """
    stage = Stage(stage)
    if stage is Stage.INTAKE:
        return term_days * 0
    if stage is Stage.MIDTERM:
        return term_days // 2
    return term_days


class Sex(Labelled):
    MALE = "male", "男", "male"
    FEMALE = "female", "女", "female"


class Education(Labelled):
    PRIMARY_OR_LESS = "primary_or_less", "小学及以下", "primary school or less"
    JUNIOR_SECONDARY = "junior_secondary", "初中", "junior secondary"
    SENIOR_SECONDARY = "senior_secondary", "高中/中专", "senior secondary or vocational"
    TERTIARY = "tertiary", "大专及以上", "tertiary"


class Employment(Labelled):
    EMPLOYED = "employed", "就业", "employed"
    UNEMPLOYED = "unemployed", "无业", "unemployed"
    OTHER = "other", "其他(学生/退休)", "other (student, retired)"


class Marital(Labelled):
    SINGLE = "single", "未婚", "single"
    MARRIED = "married", "已婚", "married"
    DIVORCED = "divorced", "离异", "divorced"
    WIDOWED = "widowed", "丧偶", "widowed"


class SupervisionType(Labelled):
    PROBATION = "probation", "缓刑", "probation"
    PAROLE = "parole", "假释", "parole"
    MEDICAL = "medical", "暂予监外执行", "temporary service outside prison"


class Tier(Labelled):
    """Management tier (domain.md, "Management tiers"); an export may carry a person's current one."""

    STRICT = "strict", "严管", "strict"
    ORDINARY = "ordinary", "普管", "ordinary"


class Offence(Labelled):
    """Offence category of the current sentence (domain.md, "Risk factors")."""

    ROBBERY = "robbery", "抢劫/抢夺", "robbery or snatching"
    ASSAULT = "assault", "故意伤害/行凶斗殴", "assault or fighting"
    AFFRAY = "affray", "寻衅滋事", "provocation and affray"
    THEFT = "theft", "盗窃", "theft"
    GAMBLING = "gambling", "赌博", "gambling"
    FRAUD = "fraud", "诈骗", "fraud"
    DRUG = "drug", "涉毒", "drug offence"
    GANG = "gang", "涉黑涉恶", "organised or gang crime"
    WEAPONS = "weapons", "涉枪涉爆", "guns and explosives"
    TERROR_CULT = "terror_cult", "涉恐涉邪", "terrorism or cult"
    DANGEROUS_DRIVING = "dangerous_driving", "危险驾驶", "dangerous or drunk driving"
    TRAFFIC = "traffic", "交通肇事", "traffic offence"
    DUTY_CRIME = "duty_crime", "职务犯罪", "duty crime"
    OTHER = "other", "其他", "other offence"


class EventType(Labelled):
    """Dated events of the ``events`` table (design.md, "Data contract")."""

    # family changes (重大家庭变故)
    FAMILY_DIVORCE = "family_divorce", "离婚", "divorce"
    FAMILY_DEATH = "family_death", "家庭成员死亡", "death of a family member"
    FAMILY_CONFLICT = "family_conflict", "家庭矛盾", "family conflict"
    # instability
    RESIDENCE_CHANGE = "residence_change", "变更居住地", "change of residence"
    JOB_CHANGE = "job_change", "变更工作", "change of job"
    JOB_LOSS = "job_loss", "失业", "job loss"
    # reporting
    REPORT_MISSED = "report_missed", "未按时报到", "missed report"
    REPORT_LATE = "report_late", "迟到报到", "late report"
    # leave and absence
    LEAVE_REQUEST = "leave_request", "请假外出", "leave request"
    UNAUTHORISED_ABSENCE = "unauthorised_absence", "未经批准外出", "unauthorised absence"
    OVERDUE_RETURN = "overdue_return", "逾期未归", "overdue return"
    # electronic monitoring
    EM_BOUNDARY = "em_boundary", "越界", "left the permitted area"
    EM_SEPARATION = "em_separation", "人机分离", "phone and person separated"
    # sanctions
    WARNING = "warning", "警告", "warning"
    POLICE_PENALTY = "police_penalty", "治安管理处罚", "police administrative penalty"
    REVOCATION_PROPOSAL = "revocation_proposal", "提请撤销缓刑/假释", "revocation proposal"
    # education and community service (value = hours)
    EDUCATION_HOURS = "education_hours", "教育学习时长", "education hours completed"
    SERVICE_HOURS = "service_hours", "社区服务时长", "community service hours completed"
    EDUCATION_MISSED = "education_missed", "缺席教育学习", "missed education session"
    # assessment of conduct
    MONTHLY_POINTS = "monthly_points", "月度量化积分", "monthly points score"
    GRADE_GOOD = "grade_good", "季度考核良好", "quarterly grade good"
    GRADE_QUALIFIED = "grade_qualified", "季度考核合格", "quarterly grade qualified"
    GRADE_UNQUALIFIED = "grade_unqualified", "季度考核不合格", "quarterly grade unqualified"
    COMMENDATION = "commendation", "表扬", "commendation"
    # other
    DRUG_TEST_POSITIVE = "drug_test_positive", "尿检阳性", "positive drug test"
    DRUG_TEST_NEGATIVE = "drug_test_negative", "尿检阴性", "negative drug test"
    DISPUTE = "dispute", "重大矛盾纠纷", "major dispute"
    PETITION = "petition", "上访", "petitioning"
    THREAT = "threat", "扬言滋事", "threat to cause trouble"


#: Flags known at intake (boolean columns of ``persons``), with their labels.
INTAKE_FLAGS: dict[str, tuple[str, str]] = {
    "flag_mental_illness": ("心理问题或精神疾病", "psychological problems or mental illness"),
    "flag_serious_illness": ("严重疾病或残疾", "serious illness or disability"),
    "flag_three_withouts": (
        "三无人员(无家可归、无亲可投、无业可就)",
        "'three withouts' (no home, no relatives, no job)",
    ),
    "flag_gang": ("涉黑涉恶关联", "gang involvement"),
    "flag_drug_use": ("吸毒史", "history of drug use"),
    "flag_abscond_tendency": ("脱管倾向", "tendency to abscond"),
}

#: Categorical columns of ``persons`` and their vocabularies.
CATEGORICAL_COLUMNS: dict[str, type[Labelled]] = {
    "sex": Sex,
    "education": Education,
    "employment": Employment,
    "marital": Marital,
    "supervision_type": SupervisionType,
    "offence": Offence,
}
