"""Refusals in the reader's language: pydantic's and the schemas' own errors in Chinese, and a stage no model
serves.

The API's refusals (``serving.api``) and the console's forms (``serving.console``) both say what is
wrong with a field in the caller's language; the field path (``person.birth_date``,
``events[3].date``) always comes first, so a message names the record and the field.
:func:`no_model_message` says, in zh or en, that a stage has no model in service and what a modeler does
about it (the 503 of every route and page that scores).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from features.vocab import Stage
from serving.scoring.schemas import field_path

log = logging.getLogger(__name__)

#: Chinese message of each pydantic (or schema) error type; ``{...}`` are the error's context values
ZH_MESSAGES: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段（请求中不应有此字段）",
    "enum": "取值不在允许范围内，应为：{expected}",
    "literal_error": "取值不在允许范围内，应为：{expected}",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能有小数部分",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本",
    "string_too_short": "至少应有{min_length}个字符",
    "string_too_long": "至多可有{max_length}个字符",
    "too_short": "至少应有{min_length}项",
    "too_long": "至多可有{max_length}项，实际为{actual_length}项",
    "greater_than_equal": "应大于或等于{ge}",
    "greater_than": "应大于{gt}",
    "less_than_equal": "应小于或等于{le}",
    "less_than": "应小于{lt}",
    "date_parsing": "应为有效日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为有效日期（YYYY-MM-DD）",
    "date_from_datetime_inexact": "应为日期，不能带时刻",
    "date_type": "应为有效日期（YYYY-MM-DD）",
    "list_type": "应为列表",
    "model_type": "应为对象",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "请求体不是有效的 JSON",
    # the schemas' own checks (serving/scoring/schemas.py raises them as PydanticCustomError with these types)
    "date_order": "{later}（{later_date}）应晚于{earlier}（{earlier_date}）",
    "as_of_outside_term": "评估日期 as_of（{as_of}）不在矫正期内（{start} 至 {end}）",
    "as_of_in_future": "评估日期（{as_of}）晚于今天（{today}）：评估只能以当天或之前的日期进行",
    "event_before_birth": "{field}（{date}）早于出生日期 person.birth_date（{birth_date}）",
    "event_after_as_of": "{field}（{date}）晚于评估日期 as_of（{as_of}）：评估日之后的事件不予接受（时点规则）",
    "reason_too_short": "须填写至少5个字的书面理由",
    "implausible_date": "{field}（{date}）不在合理范围内（{earliest} 至 {latest}）",
    "implausible_age": "出生日期 person.birth_date（{birth_date}）：矫正开始时年龄为{age}岁，不在{low}至{high}岁之间",
    "blank_id": "{field} 不能为空白",
    "control_character": "{field} 含有控制字符",
}


def _expected_zh(text: str) -> str:
    """pydantic's "'a', 'b' or 'c'" as "a、b、c"."""
    parts = [p.strip().strip("'") for p in text.replace(" or ", ", ").split(",")]
    return "、".join(p for p in parts if p)


def message_zh(error: Mapping[str, Any]) -> str:
    """The Chinese message of one pydantic error (``errors()`` item); its field path first."""
    ctx = dict(error.get("ctx") or {})
    if "expected" in ctx:
        ctx["expected"] = _expected_zh(str(ctx["expected"]))
    template = ZH_MESSAGES.get(error["type"])
    where = field_path(error["loc"])
    if template is None:
        log.warning("no Chinese message for validation error type %r", error["type"])
        return f"{where}：输入无效（{error['type']}）"
    try:
        text = template.format(**ctx)
    except (KeyError, IndexError):
        text = template.split("{")[0].rstrip("，：:（") or "输入无效"
    return f"{where}：{text}"


def message(error: Mapping[str, Any], lang: str, *, path: bool = True) -> str:
    """One pydantic error (``errors()`` item) in ``lang``: the field path (unless ``path`` is False: a form
    shows the message beside its field), then what is wrong."""
    where = field_path(error["loc"])
    if lang == "zh":
        text = message_zh(error)
        return text if path or not where else text.removeprefix(f"{where}：")
    text = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {text}" if path and where else text


#: A stage no model serves: what happened and what a modeler does (``{stages}``: the stages' names,
#: ``{stage}``: the ``--stage`` value of the commands).
NO_MODEL_MESSAGES: dict[str, str] = {
    "en": (
        "no model serves the {stages} yet, so nothing was scored or stored: a modeler trains and promotes "
        "one (riskctl train --stage {stage} --promote, or, for a version the promotion gate refused, "
        'riskctl promote --stage {stage} --version V --override-reason "...") and restarts the service '
        "(riskctl serve)"
    ),
    "zh": (
        "{stages}尚无在用模型，本次未评估、未保存任何记录：请建模人员训练并发布该阶段的模型"
        "（riskctl train --stage {stage} --promote；对未通过发布检查的版本，"
        'riskctl promote --stage {stage} --version 版本号 --override-reason "理由"），然后重启服务（riskctl serve）'
    ),
}


def no_model_message(stages: Sequence[Stage | str], lang: str) -> str:
    """That no model serves ``stages`` (one or more) and what to do, in ``lang`` (zh, else en)."""
    named = [Stage(s) for s in stages]
    stage = named[0].value if len(named) == 1 else "S"
    if lang == "zh":
        listed = "、".join(f"{s.label('zh')}（{s.value}）" for s in named)
        return NO_MODEL_MESSAGES["zh"].format(stages=listed, stage=stage)
    listed = ", ".join(s.value for s in named)
    return NO_MODEL_MESSAGES["en"].format(stages=f"{listed} stage" + ("s" if len(named) > 1 else ""), stage=stage)
