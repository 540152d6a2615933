"""Shadow replay: the stored requests of a period answered again by a candidate model, set against what was answered.

Nothing is stored and nobody sees the candidate's answers: the replay counts how many bands, tiers by risk,
effective tiers and alerts would change and in which direction, how the probability would move, which
reasons change most (a feature that enters or leaves an answer's reasons, and the mean change of its size
in points of risk among the reasons shown), and lists the persons whose effective tier would change by their
keyed id only.

The stored requests are not validated again as :class:`~serving.scoring.schemas.ScoreRequest` objects: the
service validated each before answering and stored it as that validated request, and the trail's hash chains
show it unchanged (``riskctl audit verify``). Each is checked for the schema's shape and current vocabularies
only, validated in full when it does not fit (``serving.scoring.trusted_stored_request``), and answered through
:meth:`~serving.scoring.Scorer.brief`: the same numbers and codes as a full answer, without its words and
explanation, which the report does not read. ``validate=True`` takes the slower path of full validation and
full answers instead; both give the same report (tested).
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.vocab import Stage
from models.tier_policy import Band
from serving.audit import AuditRecord, AuditStore
from serving.cases import ReviewPolicy
from serving.scoring import Brief, Scorer, ServedModel, stored_request_columns, trusted_stored_request
from serving.scoring.schemas import Assessment, ScoreRequest

#: requests scored at once (the scorer is vectorised per batch)
REPLAY_BATCH = 500
BAND_ORDER = {"low": 0, "medium": 1, "high": 2}
TIER_ORDER = {"ordinary": 0, "strict": 1}
ALERT_ORDER = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
#: the answers whose changes are counted
CHANGES = ("band", "tier_by_risk", "tier", "alert")


class ShadowError(ValueError):
    """A stored request that cannot be replayed (named by assessment id and field)."""


class ShadowLimits(BaseModel):
    """The most a candidate may change on replay for the promotion gate to accept its shadow report (shares of
    the replayed assessments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_band_changes: float = Field(0.2, ge=0, le=1)
    max_tier_changes: float = Field(0.1, ge=0, le=1)
    max_alert_changes: float = Field(0.2, ge=0, le=1)
    min_rows: int = Field(200, ge=1)


@dataclass
class ShadowReport:
    """What the candidate would have changed over the period's stored assessments."""

    stage: str
    candidate: str
    since: str
    until: str
    rows: int = 0
    changes: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    shift: list[float] = field(default_factory=list)
    reasons_moved: Counter[str] = field(default_factory=Counter)
    points_moved: dict[str, float] = field(default_factory=dict)
    persons: list[tuple[str, str, str]] = field(default_factory=list)  # (person key, stored tier, candidate's)

    def __post_init__(self) -> None:
        for name in CHANGES:
            self.changes.setdefault(name, Counter())

    def merge(self, other: ShadowReport) -> None:
        """Add a later part's counts (the replay of the records stored after this one's)."""
        self.rows += other.rows
        for name, counts in other.changes.items():
            self.changes.setdefault(name, Counter()).update(counts)
        self.shift.extend(other.shift)
        self.reasons_moved.update(other.reasons_moved)
        for feature, moved in other.points_moved.items():
            self.points_moved[feature] = self.points_moved.get(feature, 0.0) + moved
        self.persons.extend(other.persons)

    def changed(self, what: str) -> int:
        """How many assessments would get another ``band``, ``tier_by_risk``, ``tier`` or ``alert``."""
        return sum(n for (a, b), n in self.changes.get(what, Counter()).items() if a != b)

    def direction(self, what: str) -> dict[str, int]:
        """Changes of ``what`` up (riskier) and down."""
        order = {"band": BAND_ORDER, "tier": TIER_ORDER, "tier_by_risk": TIER_ORDER, "alert": ALERT_ORDER}[what]
        up = sum(n for (a, b), n in self.changes.get(what, Counter()).items() if order.get(b, 0) > order.get(a, 0))
        return {"up": up, "down": self.changed(what) - up}

    def score_shift(self) -> dict[str, float]:
        """The candidate's probability minus the stored one: mean, mean absolute, 5th, 50th and 95th centiles."""
        d = np.asarray(self.shift, dtype=float)
        if not len(d):
            return {}
        p5, p50, p95 = np.quantile(d, [0.05, 0.5, 0.95])
        return {"mean": float(d.mean()), "mean_abs": float(np.abs(d).mean()), "p05": p5, "median": p50, "p95": p95}

    def top_reasons(self, k: int = 10) -> list[tuple[str, int, float]]:
        """The features whose reasons change most: (feature, answers where it enters or leaves the reasons, mean
        absolute change of its size in points of risk)."""
        names = set(self.reasons_moved) | set(self.points_moved)
        ranked = sorted(names, key=lambda n: (-self.reasons_moved.get(n, 0), -self.points_moved.get(n, 0.0), n))
        return [
            (n, self.reasons_moved.get(n, 0), self.points_moved.get(n, 0.0) / max(self.rows, 1)) for n in ranked[:k]
        ]

    def within(self, limits: ShadowLimits) -> tuple[bool, list[str]]:
        """Whether the changes stay within ``limits``, and each one past them, in words."""
        problems = []
        if self.rows < limits.min_rows:
            problems.append(f"{self.rows} replayed assessments, fewer than the {limits.min_rows} needed")
        for what, limit in (
            ("band", limits.max_band_changes),
            ("tier", limits.max_tier_changes),
            ("alert", limits.max_alert_changes),
        ):
            share = self.changed(what) / max(self.rows, 1)
            if share > limit:
                problems.append(f"{share:.1%} of {what}s change, more than {limit:.0%}")
        return not problems, problems


def _refused(record: AuditRecord, exc: ValidationError) -> ShadowError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return ShadowError(f"assessment {record.assessment_id}: stored request field {where}: {first['msg']}")


def _request(record: AuditRecord) -> ScoreRequest:
    """A stored request validated in full (``validate=True``)."""
    try:
        return ScoreRequest.model_validate(record.request)
    except ValidationError as exc:
        raise _refused(record, exc) from None


def _stored(record: AuditRecord) -> dict[str, Any]:
    """A stored request for :func:`~serving.scoring.stored_request_columns` (see the module's docstring)."""
    try:
        body = trusted_stored_request(record.request)
    except ValidationError as exc:
        raise _refused(record, exc) from None
    if body["stage"] != record.stage:
        raise ShadowError(
            f"assessment {record.assessment_id}: stored request field stage: {body['stage']!r}, but the assessment "
            f"was stored as {record.stage!r}"
        )
    return body


def _batches(records: Iterable[AuditRecord]) -> Iterator[list[AuditRecord]]:
    batch: list[AuditRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == REPLAY_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def shadow_replay(
    store: AuditStore,
    candidate: ServedModel,
    *,
    scorer: Scorer,
    review: ReviewPolicy,
    since: str,
    until: str,
    workers: int = 1,
    validate: bool = False,
) -> ShadowReport:
    """Replay the stored requests of ``candidate``'s stage created in [since, until) through ``scorer`` (which
    serves ``candidate``) and compare each answer with the stored one.

    With ``workers`` > 1 the batches are read here and replayed by that many forked processes (each with the
    scorer already loaded), merged in the order they were stored: the report is the same as with one. With
    ``validate`` every stored request is validated again as a ``ScoreRequest`` and answered in full (slower; the
    same report).
    """
    stage = Stage(candidate.stage)
    report = ShadowReport(stage.value, f"{candidate.name} version {candidate.version}", since, until)
    batches = _batches(store.iter_assessments(since=since, until=until, stage=stage.value))
    if workers <= 1:
        for batch in batches:
            report.merge(_replay(batch, scorer, review, validate=validate))
        return report
    context = multiprocessing.get_context("fork")
    kept = (scorer, review, validate)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_keep, initargs=kept) as pool:
        for part in pool.map(_replay_kept, batches):
            report.merge(part)
    return report


_KEPT: dict[str, Any] = {}


def _keep(scorer: Scorer, review: ReviewPolicy, validate: bool) -> None:
    """A worker's scorer, review policy and path (inherited at fork, so not pickled)."""
    _KEPT.update(scorer=scorer, review=review, validate=validate)


def _replay_kept(batch: list[AuditRecord]) -> ShadowReport:
    return _replay(batch, _KEPT["scorer"], _KEPT["review"], validate=_KEPT["validate"])


def _replay(batch: list[AuditRecord], scorer: Scorer, review: ReviewPolicy, *, validate: bool) -> ShadowReport:
    """One batch replayed and compared (a partial report, merged by :meth:`ShadowReport.merge`)."""
    part = ShadowReport("", "", "", "")
    if validate:
        scored = scorer.score([_request(r) for r in batch])
        answers = [_fresh(s.assessment, review) for s in scored]
    else:
        briefs = scorer.brief(stored_request_columns([_stored(r) for r in batch]))
        answers = [_briefly(b, review) for b in briefs]
    for record, answer in zip(batch, answers, strict=True):
        _compare(part, record, answer, review)
    return part


def _codes(answer: dict[str, Any], review: ReviewPolicy) -> dict[str, str]:
    tier = answer["tier"]
    rule_id = tier.get("rule_id") if tier.get("basis") == "rule" else None
    band = str(answer["band"]["code"])
    by_risk = (tier.get("tier_by_risk") or {}).get("code") or ""
    return {
        "band": band,
        "tier_by_risk": str(by_risk),
        "tier": str(tier["tier"]["code"]),
        "alert": review.alert(band=Band(band), rule_id=rule_id, rise=None).value,
    }


@dataclass(frozen=True)
class _Answer:
    """What the report reads of a fresh answer: its codes (:func:`_codes`), probability and reasons' sizes."""

    codes: dict[str, str]
    probability: float
    points: dict[str, float]


def _alert(review: ReviewPolicy, band: str, basis: str, rule_id: str | None) -> str:
    return review.alert(band=Band(band), rule_id=rule_id if basis == "rule" else None, rise=None).value


def _fresh(a: Assessment, review: ReviewPolicy) -> _Answer:
    """A full answer's :class:`_Answer`, read from its fields (no serialisation)."""
    band = a.band.code
    codes = {
        "band": band,
        "tier_by_risk": a.tier.tier_by_risk.code if a.tier.tier_by_risk is not None else "",
        "tier": a.tier.tier.code,
        "alert": _alert(review, band, a.tier.basis, a.tier.rule_id),
    }
    return _Answer(codes, float(a.probability), {r.feature: float(r.points or 0.0) for r in a.reasons})


def _briefly(b: Brief, review: ReviewPolicy) -> _Answer:
    """A brief answer's :class:`_Answer` (the same codes and numbers as the full answer's)."""
    codes = {
        "band": b.band,
        "tier_by_risk": b.tier_by_risk,
        "tier": b.tier,
        "alert": _alert(review, b.band, b.basis, b.rule_id),
    }
    return _Answer(codes, float(b.probability), {feature: float(points or 0.0) for feature, points in b.reasons})


def _compare(report: ShadowReport, record: AuditRecord, new: _Answer, review: ReviewPolicy) -> None:
    old = record.response
    before, after = _codes(old, review), new.codes
    report.rows += 1
    for name in CHANGES:
        report.changes.setdefault(name, Counter())[(before[name], after[name])] += 1
    report.shift.append(new.probability - float(old["probability"]))
    if before["tier"] != after["tier"]:
        report.persons.append((record.person_key, before["tier"], after["tier"]))
    # the reasons as shown (the stored answer's, the fresh answer's): a reason not shown counts 0 points
    old_points = {r["feature"]: float(r.get("points") or 0.0) for r in old.get("reasons", [])}
    new_points = new.points
    report.reasons_moved.update(set(old_points) ^ set(new_points))
    for feature in set(old_points) | set(new_points):
        moved = abs(new_points.get(feature, 0.0) - old_points.get(feature, 0.0))
        if moved:
            report.points_moved[feature] = report.points_moved.get(feature, 0.0) + moved


def shadow_markdown(report: ShadowReport, *, limits: ShadowLimits | None = None) -> str:
    """The shadow report in markdown: changes by direction, the score shift, the reasons that move most and the
    persons (keyed ids) whose effective tier would change."""
    lines = [
        f"# Shadow replay: {report.stage}, {report.candidate}",
        "",
        f"Stored requests of {report.since} to {report.until} replayed: {report.rows}.",
        "",
        "| answer | changed | riskier | less risky | share changed |",
        "|---|---|---|---|---|",
    ]
    for what in ("band", "tier_by_risk", "tier", "alert"):
        d = report.direction(what)
        share = report.changed(what) / max(report.rows, 1)
        lines.append(f"| {what} | {report.changed(what)} | {d['up']} | {d['down']} | {share:.2%} |")
    shift = report.score_shift()
    if shift:
        lines += ["", "Probability, candidate minus stored: " + ", ".join(f"{k} {v:+.4f}" for k, v in shift.items())]
    lines += ["", "| reason | answers where it enters or leaves | mean change (points of risk) |", "|---|---|---|"]
    lines += [f"| {n} | {moved} | {points:.3f} |" for n, moved, points in report.top_reasons()]
    if limits is not None:
        ok, problems = report.within(limits)
        lines += [
            "",
            "Within the gate's shadow limits." if ok else "Past the gate's shadow limits: " + "; ".join(problems),
        ]
    lines += ["", f"Persons whose effective tier would change (keyed ids): {len(report.persons)}", ""]
    lines += [f"- {key}: {a} -> {b}" for key, a, b in report.persons]
    return "\n".join(lines) + "\n"
