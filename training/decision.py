"""What the promotion gate decided: each criterion, the decision on a version, and an override of it.

:class:`GateDecision` is what :func:`training.promote.decide` returns and :func:`training.promote.apply`
records: on the model version as readable tags (:meth:`GateDecision.tags`) and in its model card
(:meth:`GateDecision.record`). A refused decision becomes a promotion only through
:meth:`GateDecision.overridden`, which keeps the failed criteria and adds who overrode it and why.
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass
class Criterion:
    name: str
    passed: bool
    value: float
    limit: float
    message: str
    warning: bool = False  # passed, but with something a modeler must read (e.g. a gap too small to measure)

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "FAIL"
        return "warn" if self.warning else "pass"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"


@dataclass(frozen=True)
class Override:
    """A user's decision to promote a version the gate refused, with the written reason."""

    reason: str
    by: str
    at: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        for name in ("reason", "by"):
            value = " ".join(str(getattr(self, name) or "").split())
            if not value:
                raise ValueError(f"an override needs a non-empty '{name}'")
            object.__setattr__(self, name, value)


@dataclass
class GateDecision:
    stage: str
    model_name: str
    version: str
    promoted: bool
    alias: str
    champion_version: str | None
    criteria: list[Criterion] = field(default_factory=list)
    model_kind: str = ""
    gate_version: str = ""
    #: the champion comparison's rows, in words ("" when there is no champion)
    compared: str = ""
    #: the persons of the rows the champion was compared on (none of them seen by any model compared)
    compared_persons: frozenset[str] = frozenset()
    override: Override | None = None
    #: when the gate decided, and who asked it to (an override's user, else the operating-system user)
    at: str = field(default_factory=_now)
    by: str = field(default_factory=_user)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    @property
    def passed(self) -> bool:
        """Whether the gate itself passes the version (every criterion), override or not."""
        return not self.failed

    def summary(self) -> str:
        """One line: promoted, promoted by override, or refused and on which criteria."""
        failed = ", ".join(c.name for c in self.failed)
        if self.override is not None:
            o = self.override
            return f"promoted to @{self.alias} by override ({o.by}, {o.at}): failed {failed}; reason: {o.reason}"
        if self.promoted:
            return f"promoted to @{self.alias}: all {len(self.criteria)} criteria pass"
        return f"kept as @{self.alias}: failed {failed}"

    def describe(self) -> str:
        """The decision and every criterion on its own line (plain text: brackets are literal)."""
        kind = f" [{self.model_kind}]" if self.model_kind else ""
        head = f"{self.model_name} version {self.version}{kind} -> @{self.alias}" + (
            f" (champion was version {self.champion_version})" if self.champion_version else " (first model)"
        )
        lines = [head]
        if self.override is not None:
            o = self.override
            lines.append(f"  OVERRIDE by {o.by} at {o.at}: {o.reason}")
        if self.compared:
            lines.append(f"  rows: {self.compared}")
        return "\n".join([*lines, *(f"  [{c.verdict}] {c.message}" for c in self.criteria)])

    def tags(self, gate_version: str | None = None) -> dict[str, str]:
        """Readable tags of the model version: the decision, the rows, any override, then one per criterion."""
        tags = {
            "gate_decision": self.summary(),
            "gate_promoted": str(self.promoted).lower(),
            "gate_version": gate_version or self.gate_version,
            "gate_against_champion": self.champion_version or "none",
            "gate_compared": self.compared or "no champion",
            "gate_override": str(self.override is not None).lower(),
            "gate_decided_at": self.at,
            "gate_decided_by": self.override.by if self.override is not None else self.by,
        }
        if self.override is not None:
            tags |= {
                "gate_override_reason": self.override.reason[:5000],
                "gate_override_by": self.override.by,
                "gate_override_at": self.override.at,
                "gate_override_failed": ", ".join(c.name for c in self.failed),
            }
        tags.update({f"gate.{c.name}": f"{c.verdict}: {c.message}" for c in self.criteria})
        return tags

    def record(self) -> dict[str, Any]:
        """The decision as the model card's "Promotion gate" section reads it."""
        return {
            "promoted": self.promoted,
            "gate_version": self.gate_version,
            "against": self.champion_version,
            "compared": self.compared,
            "criteria": [asdict(c) for c in self.criteria],
            "override": None if self.override is None else asdict(self.override),
        }

    def overridden(self, override: Override, *, alias: str) -> GateDecision:
        """This refused decision promoted to ``alias`` by ``override`` (the failed criteria stay as they are).

        Raises
        ------
        ValueError
            If the gate passed the version: there is nothing to override.
        """
        if self.passed:
            raise ValueError(f"{self.model_name} version {self.version} passes the gate: nothing to override")
        return replace(self, promoted=True, alias=alias, override=override, at=override.at, by=override.by)

    def history_entry(self) -> dict[str, Any]:
        """The decision as one entry of the version's promotion history (:mod:`training.history`)."""
        return {
            "at": self.at,
            "by": self.override.by if self.override is not None else self.by,
            "event": "override" if self.override is not None else ("promoted" if self.promoted else "refused"),
            "alias": self.alias,
            "champion_before": self.champion_version,
            "gate_version": self.gate_version,
            "criteria": {c.name: c.verdict for c in self.criteria},
            **({"reason": self.override.reason} if self.override is not None else {}),
        }


__all__ = ["Criterion", "GateDecision", "Override"]
