"""The one loader of the project's policy and settings files (YAML, each beside the code that reads it).

:func:`load_policy_file` reads a file given by path, or the default shipped in a package, parses the
YAML and validates it into a frozen pydantic model. A file that is not YAML, or breaks the model's
rules, is refused with one error naming the file and each problem: the caller chooses the error type
and how a validation error is worded (the tier policy names the stage and the rule, the training
settings name the key and its allowed values).

Used by :class:`models.tier_policy.TierPolicy` (``models/tier_policy.yaml``),
:class:`training.config.TrainConfig` (``training/params.yaml``), :class:`training.config.GateConfig`
(``training/promotion.yaml``) and :class:`serving.cases.ReviewPolicy` (``serving/cases/review_policy.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["load_policy_file"]

M = TypeVar("M", bound=BaseModel)


def load_policy_file(
    model: type[M],
    path: Path | str | None,
    *,
    default: tuple[str, str],
    error: type[Exception],
    describe: Callable[[ValidationError, Any], str],
) -> M:
    """The file at ``path`` (or ``default``, a (package, file name) pair) validated as ``model``.

    Raises
    ------
    error
        ``"<file>: not valid YAML: ..."`` or ``"<file>: " + describe(validation error, parsed YAML)``.
    """
    if path is None:
        package, name = default
        source, text = f"{package.replace('.', '/')}/{name}", resources.files(package).joinpath(name).read_text("utf-8")
    else:
        source, text = str(path), Path(path).read_text("utf-8")
    known = _VALID.get((model, text))
    if known is not None:  # the same text validated before: the same frozen object (pages load policies often)
        return known  # type: ignore[return-value]  # keyed by the model: an instance of it
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc
    try:
        valid = model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise error(f"{source}: {describe(exc, raw)}") from None
    if len(_VALID) >= 64:
        _VALID.clear()
    _VALID[(model, text)] = valid
    return valid


#: Files validated so far, by model and text: a policy is read again (a changed file is seen at once) but
#: parsed and validated once. The models are frozen, so one instance can be shared.
_VALID: dict[tuple[type[BaseModel], str], BaseModel] = {}
