"""Tier decisions (管理等级调整审批): a caseworker proposes, a supervisor approves or rejects.

Only an approved decision changes a person's current tier. Each step is written to the case store
(the decision's state) and chained in the audit trail (``decision_steps``, beside the assessment
that prompted it) in one go: the case store's transaction commits only after the audit step is
stored, so a refused or failed step leaves neither behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from features.vocab import Labelled, Tier
from models.tier_policy import Rule, TierPolicy
from serving.auth import Principal, Role
from serving.cases import _tables as t
from serving.cases._errors import CaseError
from serving.cases._schemas import COMMENT_MAX, REASON_MAX, DecisionOut
from serving.cases._store import now_text
from serving.scoring import answer_tier_by_risk

if TYPE_CHECKING:
    from serving.audit import AuditStore
    from serving.cases._store import CaseStore


class ReasonCode(Labelled):
    """Why a tier change is proposed (controlled list)."""

    RISK_ASSESSMENT = "risk_assessment", "风险评估结果", "risk assessment result"
    SERIOUS_VIOLATION = "serious_violation", "严重违规", "serious violation"
    FAMILY_CRISIS = "family_crisis", "重大家庭变故", "family crisis"
    MENTAL_HEALTH = "mental_health", "心理或精神问题", "mental health"
    GOOD_CONDUCT = "good_conduct", "表现良好", "good conduct"
    POLICY_PERIOD_ENDED = "policy_period_ended", "政策期限届满", "policy period ended"
    OTHER = "other", "其他（须写明理由）", "other (reason in writing)"


def _require(principal: Principal, role: Role, what: str) -> str:
    if principal.role is not role:
        raise CaseError(
            403,
            f"role '{principal.role.value}' may not {what}: only a {role.value} may",
            loc=["role"],
            zh=f"角色 {principal.role.value} 无权{what}",
        )
    return office_of(principal)


def office_of(principal: Principal, office: str | None = None) -> str:
    """The caller's office; refuses a token without one, or a request for another office."""
    if not principal.office:
        raise CaseError(
            403,
            f"the token of {principal.user!r} names no office: issue one with 'riskctl token --office'",
            loc=["office"],
            zh="令牌未指定司法所",
        )
    if office is not None and office != principal.office:
        raise CaseError(
            403,
            f"office {office!r} is not the caller's office {principal.office!r}",
            loc=["office"],
            zh=f"无权查看其他司法所（{office}）",
        )
    return principal.office


def _at_most(text: str, limit: int, field: str) -> None:
    """Refuse a written text longer than the API's schema allows (the console's forms reach here directly)."""
    if len(text.strip()) > limit:
        raise CaseError(
            422,
            f"field '{field}': at most {limit:,} characters (this one has {len(text.strip()):,})",
            loc=[field],
            zh=f"字段 {field}：最多{limit}个字（现为{len(text.strip())}个字）",
        )


def same_office(principal_office: str, office: str | None, person_id: str) -> None:
    if office != principal_office:
        raise CaseError(
            403,
            f"person_id {person_id!r} belongs to another office, not {principal_office!r}",
            loc=["person_id"],
            zh=f"人员 {person_id!r} 不属于本所（{principal_office}）",
        )


def _assessment_tier_by_risk(
    store: CaseStore, audit: AuditStore, conn: Connection, *, assessment_id: str, person_id: str, policy: TierPolicy
) -> str:
    """The tier by risk of the assessment a proposal refers to; it must be the person's."""
    indexed = store.assessment(assessment_id, conn=conn)
    if indexed is not None and indexed["person_id"] == person_id:
        return str(indexed["tier_by_risk"])
    record = audit.get(assessment_id)
    if record is None or record.person_key != audit.person_key(person_id):
        raise CaseError(
            404,
            f"assessment_id {assessment_id!r}: no assessment of person {person_id!r}",
            loc=["assessment_id"],
            zh=f"assessment_id {assessment_id!r}：该人员无此评估",
        )
    return answer_tier_by_risk(record.response, policy)


@dataclass(frozen=True)
class RuleFloor:
    """A mandatory rule in force: no decision may move the person below ``tier`` while it applies."""

    rule: Rule
    tier: Tier
    until: dt.date | None  # the last day a time-limited rule applies; None: as long as it holds
    assessment_id: str  # the assessment whose stored features the rule holds on

    def refusal(self, person_id: str, to: Tier) -> CaseError:
        """The 409 that names the rule and the day it ends."""
        until_en = f"until {self.until}" if self.until else "for as long as it holds"
        until_zh = f"至{self.until}" if self.until else "在其条件成立期间一直"
        return CaseError(
            409,
            f"person {person_id!r} must stay {self.tier.en}: the mandatory rule '{self.rule.id}' "
            f"({self.rule.en}) applies {until_en} (assessment {self.assessment_id}); "
            f"{to.en} is below it. If the rule rests on a wrong record, correct the record and score again",
            loc=["to_tier"],
            zh=f"人员 {person_id!r} 须为{self.tier.zh}：强制规则“{self.rule.zh}”{until_zh}适用，"
            f"不能调整为{to.zh}。如该规则依据的记录有误，请更正记录后重新评估",
        )


def rule_floor(
    store: CaseStore,
    audit: AuditStore,
    conn: Connection,
    *,
    person: dict[str, Any],
    policy: TierPolicy,
    on: dt.date,
    assessment_ids: tuple[str, ...] = (),
) -> RuleFloor | None:
    """The mandatory rule that keeps ``person`` strict on ``on``, if any.

    The rules are evaluated on the stored features of the person's latest assessment in the case
    store and of ``assessment_ids`` (the assessment a proposal refers to): the first rule in force on
    either is the floor.
    """
    latest = conn.execute(
        select(t.assessments.c.assessment_id)
        .where(t.assessments.c.person_id == person["person_id"])
        .order_by(t.assessments.c.as_of.desc(), t.assessments.c.created_at.desc())
        .limit(1)
    ).scalar()
    for assessment_id in dict.fromkeys([*(a for a in [latest] if a), *assessment_ids]):
        record = audit.get(assessment_id)
        if record is None or record.person_key != audit.person_key(person["person_id"]):
            continue
        rules = policy.rules_in_force(
            record.stage,
            record.explanation.get("features", {}),
            supervision_start=person["supervision_start"],
            on=on,
        )
        if rules:
            rule = rules[0]
            until = rule.last_day(person["supervision_start"])
            return RuleFloor(rule=rule, tier=Tier.STRICT, until=until, assessment_id=assessment_id)
    return None


def tier_floor(
    store: CaseStore, audit: AuditStore, person_id: str, *, policy: TierPolicy, on: dt.date | None = None
) -> RuleFloor | None:
    """The mandatory rule that keeps a person strict on ``on`` (default today), for pages and forms."""
    with store.read() as conn:
        person = store.person(person_id, conn=conn)
        return rule_floor(store, audit, conn, person=person, policy=policy, on=on or dt.date.today())


def propose(
    store: CaseStore,
    audit: AuditStore,
    *,
    principal: Principal,
    person_id: str,
    to_tier: str,
    reason_code: str,
    reason: str,
    assessment_id: str,
    policy: TierPolicy | None = None,
    lang: str = "zh",
) -> DecisionOut:
    """A caseworker's proposal; refused (nothing written) for the wrong role, another office's person,
    an unknown reason code or assessment, the tier the person already has, or a pending proposal."""
    office = _require(principal, Role.CASEWORKER, "propose a tier change")
    if reason_code not in ReasonCode.codes():
        raise CaseError(
            422,
            f"unknown reason_code {reason_code!r}; known: {ReasonCode.codes()}",
            loc=["reason_code"],
            zh=f"未知的理由代码 {reason_code!r}",
        )
    if len((reason or "").strip()) < 5:
        raise CaseError(
            422,
            "field 'reason': a written reason of at least 5 characters is required",
            loc=["reason"],
            zh="字段 reason：须写明至少5个字的理由",
        )
    _at_most(reason, REASON_MAX, "reason")
    to = Tier(to_tier)
    with store.write() as conn:
        person = store.person(person_id, conn=conn)
        same_office(office, person["office"], person_id)
        if person["tier"] == to.value:
            raise CaseError(
                409,
                f"person {person_id!r} is already in the {to.en} tier: nothing to change",
                loc=["to_tier"],
                zh=f"人员 {person_id!r} 已是{to.zh}，无需调整",
            )
        pending = conn.execute(
            select(t.decisions.c.decision_id).where(
                (t.decisions.c.person_id == person_id) & (t.decisions.c.status == "proposed")
            )
        ).first()
        if pending is not None:
            raise CaseError(
                409,
                f"person {person_id!r} has a proposal awaiting decision ({pending[0]})",
                loc=["person_id"],
                zh=f"人员 {person_id!r} 已有待审批的调整申请",
            )
        policy = policy or TierPolicy.load()
        by_risk = _assessment_tier_by_risk(
            store, audit, conn, assessment_id=assessment_id, person_id=person_id, policy=policy
        )
        floor = rule_floor(
            store, audit, conn, person=person, policy=policy, on=dt.date.today(), assessment_ids=(assessment_id,)
        )
        if floor is not None and to is not floor.tier:
            raise floor.refusal(person_id, to)
        row = dict(
            decision_id=str(uuid.uuid4()),
            person_id=person_id,
            office=office,
            assessment_id=assessment_id,
            from_tier=person["tier"],
            to_tier=to.value,
            tier_by_risk=by_risk,
            reason_code=reason_code,
            reason=reason.strip(),
            status="proposed",
            proposed_by=principal.user,
            proposed_at=now_text(),
            decided_by=None,
            decided_at=None,
            comment=None,
        )
        conn.execute(insert(t.decisions).values(**row))
        _chain(audit, row, step="proposed", text=row["reason"], actor=principal.user)
    return _out(row, current_tier=person["tier"], lang=lang)


def approve(
    store: CaseStore,
    audit: AuditStore,
    *,
    principal: Principal,
    decision_id: str,
    comment: str,
    lang: str = "zh",
    policy: TierPolicy | None = None,
) -> DecisionOut:
    """A supervisor approves a proposal of their office: the person's current tier changes.

    Refused (409, nothing written) when a mandatory rule now in force keeps the person above the
    proposed tier: the rule is a floor for the supervisor too.
    """
    return _decide(
        store,
        audit,
        principal=principal,
        decision_id=decision_id,
        comment=comment,
        approved=True,
        lang=lang,
        policy=policy,
    )


def reject(
    store: CaseStore,
    audit: AuditStore,
    *,
    principal: Principal,
    decision_id: str,
    comment: str,
    lang: str = "zh",
    policy: TierPolicy | None = None,
) -> DecisionOut:
    """A supervisor rejects a proposal of their office: the current tier stays (``policy`` is not needed)."""
    return _decide(
        store, audit, principal=principal, decision_id=decision_id, comment=comment, approved=False, lang=lang
    )


def _decide(
    store: CaseStore,
    audit: AuditStore,
    *,
    principal: Principal,
    decision_id: str,
    comment: str,
    approved: bool,
    lang: str,
    policy: TierPolicy | None = None,
) -> DecisionOut:
    office = _require(principal, Role.SUPERVISOR, "approve or reject a tier change")
    if len((comment or "").strip()) < 2:
        raise CaseError(
            422,
            "field 'comment': the supervisor's comment is required",
            loc=["comment"],
            zh="字段 comment：须填写审批意见",
        )
    _at_most(comment, COMMENT_MAX, "comment")
    with store.write() as conn:
        found = conn.execute(select(t.decisions).where(t.decisions.c.decision_id == decision_id)).mappings().first()
        if found is None:
            raise CaseError(
                404, f"unknown decision_id {decision_id!r}", loc=["decision_id"], zh=f"未知的调整申请 {decision_id!r}"
            )
        row = dict(found)
        if row["office"] != office:  # the refusal names the decision asked for, never the person behind it
            raise CaseError(
                403,
                f"decision {decision_id!r} belongs to another office, not {office!r}",
                loc=["decision_id"],
                zh=f"调整申请 {decision_id!r} 不属于本所（{office}）",
            )
        if row["status"] != "proposed":
            raise CaseError(
                409,
                f"decision {decision_id!r} was already {row['status']}",
                loc=["decision_id"],
                zh=f"该申请已{'批准' if row['status'] == 'approved' else '驳回'}",
            )
        person = store.person(row["person_id"], conn=conn)
        if approved and person["tier"] != row["from_tier"]:
            raise CaseError(
                409,
                f"person {row['person_id']!r} is now in the {person['tier']} tier, not "
                f"{row['from_tier']} as proposed: propose again",
                loc=["decision_id"],
            )
        if approved:
            floor = rule_floor(
                store,
                audit,
                conn,
                person=person,
                policy=policy or TierPolicy.load(),
                on=dt.date.today(),
                assessment_ids=(row["assessment_id"],),
            )
            if floor is not None and Tier(row["to_tier"]) is not floor.tier:
                raise floor.refusal(row["person_id"], Tier(row["to_tier"]))
        status = "approved" if approved else "rejected"
        row.update(status=status, decided_by=principal.user, decided_at=now_text(), comment=comment.strip())
        conn.execute(
            update(t.decisions)
            .where(t.decisions.c.decision_id == decision_id)
            .values(status=status, decided_by=row["decided_by"], decided_at=row["decided_at"], comment=row["comment"])
        )
        current = person["tier"]
        if approved:
            current = row["to_tier"]
            conn.execute(
                update(t.tiers)
                .where(t.tiers.c.person_id == row["person_id"])
                .values(tier=current, since=dt.date.today(), decision_id=decision_id, source="decision")
            )
        _chain(audit, row, step=status, text=row["comment"], actor=principal.user)
    return _out(row, current_tier=current, lang=lang)


def _chain(audit: AuditStore, row: dict[str, Any], *, step: str, text: str, actor: str) -> None:
    try:
        audit.add_decision_step(
            decision_id=row["decision_id"],
            step=step,
            assessment_id=row["assessment_id"],
            person_id=row["person_id"],
            office=row["office"],
            from_tier=row["from_tier"],
            to_tier=row["to_tier"],
            reason_code=row["reason_code"],
            text=text,
            actor=actor,
        )
    except KeyError:
        raise CaseError(
            404, f"assessment_id {row['assessment_id']!r} is not in the audit trail", loc=["assessment_id"]
        ) from None


def _out(row: dict[str, Any], *, current_tier: str, lang: str = "zh") -> DecisionOut:
    code = ReasonCode(row["reason_code"])
    return DecisionOut(
        **{k: row[k] for k in DecisionOut.model_fields if k in row},
        reason_label=code.label("zh" if lang == "zh" else "en"),
        current_tier=current_tier,
    )


def decision(store: CaseStore, decision_id: str) -> dict[str, Any]:
    """One stored decision's row (404 if unknown)."""
    with store.read() as conn:
        found = conn.execute(select(t.decisions).where(t.decisions.c.decision_id == decision_id)).mappings().first()
    if found is None:
        raise CaseError(404, f"unknown decision_id {decision_id!r}", loc=["decision_id"])
    return dict(found)
