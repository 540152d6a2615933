"""The console's words in Chinese (default) and English.

Labels of controlled values (stages, tiers, bands, event types...) come from ``features.vocab``
and ``models.tier_policy`` like everywhere else; this table holds only the console's own text.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "app": ("社区矫正再犯风险评估", "Re-offending risk assessment"),
    "skip": ("跳到正文", "Skip to content"),
    "switch_to": ("English", "中文"),
    "switch_label": ("切换语言", "Switch language"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "token": ("访问令牌", "Access token"),
    "token_help": (
        "粘贴管理员发给您的令牌（riskctl token）。令牌只用于登录，不会保存在浏览器中。",
        "Paste the token your administrator gave you (riskctl token). It is used only to sign in "
        "and is not kept in the browser.",
    ),
    "bad_token": ("令牌无效或已被吊销。", "This token is unknown or has been revoked."),
    "no_console_role": (
        "该角色（建模人员）不使用本控制台：请使用 API 的 /models。",
        "This role (modeler) does not use the console: use the API's /models.",
    ),
    "session_ended": ("会话已结束，请重新登录。", "Your session has ended: please sign in again."),
    "ended_revoked": (
        "会话已结束：登录所用的访问令牌已被吊销或更换。请使用管理员新发给您的令牌登录。",
        "Your session ended: the access token it was opened with has been revoked or replaced. "
        "Sign in with the new token your administrator gives you.",
    ),
    "ended_expired": (
        "会话已过期（登录后超过规定时长），请重新登录。",
        "Your session expired (it lasts a fixed time after sign-in): please sign in again.",
    ),
    "signed_out": ("您已退出。", "You are signed out."),
    "csrf": (
        "表单已过期或来源不明（缺少防伪令牌），未执行任何操作。请返回页面重试。",
        "The form was refused: its anti-forgery token is missing or wrong. Nothing was done; "
        "go back to the page and try again.",
    ),
    "https_needed": (
        "请通过 HTTPS 打开控制台。本页经未加密的 HTTP 从 {host} 打开，浏览器不会保存登录所需的安全 Cookie，"
        "因此无法登录。请改用 https:// 地址：服务可直接提供 HTTPS（riskctl serve --ssl-certfile 证书 "
        "--ssl-keyfile 私钥），或置于启用 TLS 的反向代理之后（见 docs/operations.md）。",
        "Open the console over HTTPS. This page came over plain HTTP from {host}, and a browser does not keep "
        "the secure cookie that signing in needs, so signing in would fail. Use an https:// address: the "
        "service serves HTTPS itself (riskctl serve --ssl-certfile CERT --ssl-keyfile KEY) or sits behind a "
        "reverse proxy with TLS (see docs/operations.md).",
    ),
    "forbidden": ("您的角色（{role}）无权执行此操作。", "Your role ({role}) may not do this."),
    "not_found": ("没有找到该记录。", "No such record."),
    "role_caseworker": ("矫正工作人员", "caseworker"),
    "role_auditor": ("审计人员", "auditor"),
    "role_supervisor": ("司法所负责人", "supervisor"),
    "role_modeler": ("建模人员", "modeler"),
    # caseworker
    "nav_score": ("评估", "Score"),
    "nav_person": ("人员", "Person"),
    "score_title": ("风险评估", "Risk assessment"),
    "score_intro": (
        "填写社区矫正对象的档案和事件，选择评估阶段。评估结果与 API 相同，并记入审计记录。",
        "Enter the person's record and events and choose the stage. The answer is the API's "
        "own and is stored in the audit trail.",
    ),
    "person_fields": ("人员档案", "Person record"),
    "assessment": ("评估", "Assessment"),
    "stage": ("评估阶段", "Stage"),
    "as_of": ("评估日期（可选）", "Assessment date (optional)"),
    "as_of_help": (
        "留空：入矫为矫正开始日，中期为期中，解矫为矫正结束日。",
        "Blank: supervision start (intake), mid-term, or supervision end (release).",
    ),
    "events": ("事件（每行一条：日期 事件类型 [数值]）", "Events (one a line: date event-type [value])"),
    "events_help": ("事件类型代码：", "Event type codes:"),
    "score_now": ("立即评估", "Score now"),
    "refused": ("未评估：请更正以下字段。", "Not scored: please correct these fields."),
    "stage_unserved": ("（暂无在用模型）", " (no model in service)"),
    "yes": ("是", "yes"),
    "choose": ("请选择", "choose"),
    "no": ("否", "no"),
    "result_title": ("评估结果", "Assessment result"),
    "probability": ("再犯概率", "Probability of a new offence"),
    "within": ("{months:g} 个月内", "within {months:g} months"),
    "band": ("风险等级", "Risk band"),
    "tier": ("管理等级", "Management tier"),
    "effective_tier": ("执行等级", "Effective tier"),
    "tier_by_risk": ("按风险的等级", "Tier by risk"),
    "decisions_n": ("决定数", "Decisions"),
    "differs_legend": ("执行等级与按风险的等级不同", "effective tier differs from the tier by risk"),
    "utc": ("UTC 时间", "UTC"),
    "tier_basis_rule": ("强制规则", "mandatory rule"),
    "rule_until": ("（规则适用至 {until}，之后为{tier}）", "(the rule applies until {until}, then {tier})"),
    "reasons": ("主要原因", "Main reasons"),
    "raises": ("升高风险", "raises the risk"),
    "lowers": ("降低风险", "lowers the risk"),
    "waterfall": ("从典型人员的风险到此人的风险", "From a typical person's risk to this person's"),
    "typical": ("典型人员", "typical person"),
    "other_factors": ("其他因素", "other factors"),
    "calibration": ("校准", "calibration"),
    "this_person": ("此人", "this person"),
    "model": ("模型", "Model"),
    "assessment_id": ("评估编号", "Assessment id"),
    "events_used": ("使用的事件", "Events used"),
    "override_title": ("调整管理等级", "Change the tier"),
    "override_intro": (
        "与评估结果不同的管理等级，须写明理由。记录保存在评估旁，评估本身不变。",
        "A tier different from the assessment's, with a written reason. It is stored beside "
        "the assessment, which never changes.",
    ),
    "new_tier": ("新的管理等级", "New tier"),
    "reason_text": ("理由", "Reason"),
    "record_override": ("提交", "Record"),
    "override_saved": ("已记录管理等级调整。", "The tier change is recorded."),
    "person_title": ("人员", "Person"),
    "person_id": ("人员编号", "Person id"),
    "look_up": ("查询", "Look up"),
    "no_assessments": ("该人员尚无评估记录。", "No assessments of this person are on record."),
    "latest_by_stage": ("各阶段最近一次评估", "Latest assessment of each stage"),
    "history": ("风险变化", "Risk over time"),
    "step_down_title": ("严管转普管名单", "Step-down list"),
    "step_down_intro": (
        "本所现为严管、已无强制规则约束的人员：期限性规则已届满，或最近几次研判按风险均为普管。"
        "可当即决定转为普管，或说明理由暂缓（到期后重新列入）。",
        "Strict persons of the office whom no mandatory rule keeps strict any more: a time-limited rule has "
        "ended, or the latest reviews all found them ordinary by risk. Step them down now, or say why not yet "
        "(they come back when the reason's period ends).",
    ),
    "why_rule_ended": ("“{rule}”已于 {date} 届满", '"{rule}" ended on {date}'),
    "why_ordinary": (
        "最近{n}次研判（{dates}）按风险均为普管",
        "ordinary by risk at the latest {n} reviews ({dates})",
    ),
    "step_down_now": ("转为普管", "Step down to ordinary"),
    "not_now": ("暂缓", "Not now"),
    "not_now_reason": ("暂缓理由", "Why not now"),
    "step_down_none": ("目前没有需要考虑转为普管的人员。", "Nobody is waiting for a step-down."),
    "done_stepped_down": ("已转为普管。", "Stepped down to ordinary."),
    "done_deferred": (
        "已暂缓，理由期满后将重新列入。",
        "Deferred: the person comes back when the reason's period ends.",
    ),
    "today_title": ("今日工作", "Today"),
    "today_caseload": ("我的在册对象 {n} 人", "{n} people on my caseload"),
    "today_office": (
        "本所在册 {n} 人（未分配个人名下对象，显示全所）",
        "{n} people on the office's roll (nobody is assigned to you: the whole office)",
    ),
    "today_red_alert": ("红色预警", "red alert"),
    "today_orange_alert": ("橙色预警", "orange alert"),
    "today_overdue": ("评估已逾期", "assessment overdue"),
    "today_due": ("评估到期", "assessment due"),
    "today_rule_ends": ("规则本月到期", "rule ends this month"),
    "today_decided": ("申请已有决定", "proposal decided"),
    "today_first": (
        "每类最多显示最紧急的 {n} 项；其余见",
        "At most the {n} most urgent items of each kind are shown; the rest:",
    ),
    "new": ("新", "new"),
    "profile": ("基本情况", "Profile"),
    "p_offence": ("罪名类别", "Offence"),
    "p_supervision": ("矫正类别", "Supervision"),
    "p_age": ("年龄", "Age"),
    "p_age_value": ("{age}岁（{born}出生）", "{age} (born {born})"),
    "p_sentence": ("刑期", "Sentence"),
    "p_months": ("{n}个月", "{n} months"),
    "p_priors": ("前科 / 既往矫正", "Prior convictions / supervisions"),
    "p_priors_value": ("{c}次 / {s}次", "{c} / {s}"),
    "p_flags": ("入矫时情况", "At intake"),
    "p_none": ("无", "none"),
    "p_caseworker": ("责任矫正工作人员", "Caseworker"),
    "p_unassigned": ("未分配（全所）", "not assigned (the office)"),
    "tier_history": ("管理等级变化", "Tier over time"),
    "tier_how_arrival": ("入矫时（导入时无等级记录，按严管）", "on arrival (no tier in the export: strict)"),
    "tier_how_export": ("入矫时（按导入的管理等级）", "on arrival (the export's tier)"),
    "tier_how_start": ("入矫时", "on arrival"),
    "tier_how_decision": ("审批决定", "decision"),
    "other_office_run": ("该研判记录不属于您的司法所。", "This review run belongs to another office."),
    "today_nothing": ("今天没有待办事项。", "Nothing needs doing today."),
    "due_by": ("截止 {date}", "by {date}"),
    "future_roll": (
        "日期晚于今天：这是按矫正期推算的预计名册，其中的状态尚未发生。",
        "A date after today: this is the roll the terms project, not what has happened.",
    ),
    "alert_of_review": ("见 {date} 研判", "from the review of {date}"),
    "rule_ends_on": (
        "“{rule}”于 {date} 到期，届满后由负责人决定是否调整",
        '"{rule}" ends on {date}; the supervisor then decides the tier',
    ),
    "decided_as": ("调整为{tier}的申请已{status}（{date}）", "proposal of {tier}: {status} ({date})"),
    "points_short": ("百分点", "points"),
    "waterfall_help": (
        "从同阶段典型人员的风险出发，逐项加上主要因素；“其他因素”是其余所有因素之和，“校准”是把模型分数换算为实际概率的一步。",
        'From the risk of a typical person of the stage, each main factor added in turn; "other factors" are all '
        'the rest together, and "calibration" is the step that turns the model\'s score into the probability.',
    ),
    "moved": ("与上次评估相比的变化", "What moved since the last assessment"),
    "moved_none": ("本阶段此前没有评估，无可比较。", "No earlier assessment of this stage: nothing to compare yet."),
    "moved_same": (
        "没有哪项记录的变化使风险改变0.1个百分点以上。",
        "No change in the record moved the risk by 0.1 percentage points or more.",
    ),
    "moved_intro": (
        "风险由 {a} 变为 {b}（{when}）。记录有变化、影响最大的因素（各自约占风险变化的百分点）：",
        "Risk went from {a} to {b} ({when}). Factors whose record changed, by their share of the change "
        "(percentage points):",
    ),
    "decisions": ("管理等级决定", "Tier decisions"),
    "no_decisions": ("无", "None"),
    "when": ("时间", "When"),
    "by": ("操作人", "By"),
    # the office (case store)
    "nav_roster": ("人员名册", "Roster"),
    "nav_proposals": ("待审批", "Proposals"),
    "nav_review": ("风险研判会", "Review meeting"),
    "nav_overdue": ("逾期评估", "Overdue"),
    "nav_score_record": ("按档案评估", "Score a record"),
    "no_office": (
        "您的令牌未指定司法所（riskctl token --office）。",
        "Your token names no office (riskctl token --office).",
    ),
    "other_office": ("该人员不属于您的司法所。", "This person belongs to another office."),
    "roster_title": ("人员名册", "Roster"),
    "list_date": ("日期", "Date"),
    "office": ("司法所", "Office"),
    "search": ("搜索人员编号", "Search by person id"),
    "state": ("评估状态", "Assessment state"),
    "state_due": ("应评估", "due"),
    "state_overdue": ("已逾期", "overdue"),
    "state_upcoming": ("即将到期", "upcoming"),
    "state_done": ("已完成", "done"),
    "state_not_yet": ("未到期", "not yet"),
    "on_roll": ("在册 {n} 人，符合筛选条件 {m} 人", "{n} on the roll, {m} match the filters"),
    "state_count": ("{state} {people} 人（{n} 项评估）", "{state}: people {people}, assessments {n}"),
    "showing": ("显示第 {a}–{b} 人，共 {n} 人", "showing {a}–{b} of {n}"),
    "page_of": ("第 {page}/{pages} 页", "page {page} of {pages}"),
    "page_prev": ("上一页", "Previous page"),
    "page_next": ("下一页", "Next page"),
    "pages": ("翻页", "Pages"),
    "opens_on": ("{date} 起", "opens {date}"),
    "legend_title": ("预警颜色说明", "What the alert colours mean"),
    "legend_policy": ("（研判策略 {version}）", "(review policy {version})"),
    "legend_other_policy": (
        "本次研判按策略 {run} 进行，现行策略为 {now}：以下说明按现行策略，可能与本次研判不同。",
        "This review ran under policy {run}; the policy now is {now}: the legend below is today's and may differ.",
    ),
    "current_tier": ("当前管理等级", "Current tier"),
    "term": ("矫正期", "Term"),
    "score_now_for": ("立即评估", "Score now"),
    "propose_title": ("申请调整管理等级", "Propose a tier change"),
    "propose_intro": (
        "由司法所负责人审批；批准后当前管理等级才改变。",
        "A supervisor approves or rejects it; only approval changes the current tier.",
    ),
    "reason_code": ("理由类别", "Reason code"),
    "behind": ("依据的评估", "Assessment behind it"),
    "propose": ("提交申请", "Propose"),
    "events_on_record": ("在案事件", "Events on record"),
    "no_events": ("无在案事件。", "No events on record."),
    "not_a_date": ("{value} 不是有效日期（YYYY-MM-DD）", "{value} is not a date (YYYY-MM-DD)"),
    "unknown_stage": ("未知的评估阶段 {value}", "unknown stage {value}"),
    "unknown_tier": ("字段 to_tier：未知的管理等级 {value}", "field 'to_tier': unknown tier {value}"),
    "end_before_start": ("结束日期 {end} 早于开始日期 {start}", "end {end} is before start {start}"),
    "event_line": (
        "第{line}行：应为“日期 事件类型 [数值]”，实为 {got}",
        "line {line}: expected 'date event-type [value]', got {got}",
    ),
    "review_not_a_date": ("字段 as_of：{value} 不是有效日期", "field 'as_of': {value} is not a date"),
    "backdated": ("补做", "backdated"),
    "superseded": ("已被重新研判取代", "superseded by a rerun"),
    "backdated_run": (
        "补做的研判：研判日期早于实际进行日期（{when}，{who}）；其中的评分是研判评分，不计为正式评估。",
        "A backdated review: dated before the day it was run ({when}, by {who}); its scores are review "
        "scores, not formal assessments.",
    ),
    "events_on_day": (
        "评估当天的事件 {n} 件未计入（时点规则：只计入评估日之前的事件）",
        "{n} event(s) dated on the assessment day not counted (point-in-time rule: only earlier events count)",
    ),
    "record_event": ("记录事件", "Record an event"),
    "record_event_intro": (
        "与接口 /cases/event 同样校验：日期不晚于今天、不早于出生日期。事件计入其日期之后的评估："
        "今天记录的今天的事件，明天起的评估才计入（时点规则）。",
        "Checked as /cases/event checks it: dated no later than today and not before birth. An event counts in "
        "assessments dated after it: today's event counts from tomorrow's assessment on (point-in-time rule).",
    ),
    "event_date": ("日期", "Date"),
    "event_type": ("事件类型", "Event type"),
    "event_value": ("数值（如有）", "Value (if any)"),
    "record": ("记录", "Record"),
    "done_event": ("已记录事件。", "Event recorded."),
    "rule_floor": (
        "强制规则“{rule}”{until}适用：管理等级不能低于{tier}。如该规则依据的记录有误，请更正记录后重新评估。",
        'The mandatory rule "{rule}" applies {until}: the tier cannot go below {tier}. If the rule rests on a '
        "wrong record, correct the record and score again.",
    ),
    "floor_until": ("至{day}", "until {day}"),
    "rule_while": ("在其条件成立期间", "for as long as it holds"),
    "floor_no_change": (
        "强制规则在适用期内，不能申请调整为更低的管理等级。",
        "While the rule applies, no lower tier can be proposed.",
    ),
    "pending_title": ("待审批的调整申请", "Proposals awaiting a decision"),
    "no_pending": ("没有待审批的申请。", "No proposals are waiting."),
    "proposed_by": ("申请人", "Proposed by"),
    "comment": ("审批意见", "Comment"),
    "approve": ("批准", "Approve"),
    "reject": ("驳回", "Reject"),
    "from_to": ("由 {a} 调整为 {b}", "from {a} to {b}"),
    "status": ("状态", "Status"),
    "status_proposed": ("待审批", "awaiting decision"),
    "status_approved": ("已批准", "approved"),
    "status_rejected": ("已驳回", "rejected"),
    "recently_decided": ("最近的决定", "Recently decided"),
    "done_scored": ("已评估并记入审计记录。", "Scored and stored in the audit trail."),
    "done_proposed": ("已提交调整申请，等待审批。", "The proposal is submitted and awaits a decision."),
    "done_approved": ("已批准：当前管理等级已改变。", "Approved: the current tier has changed."),
    "done_rejected": ("已驳回：当前管理等级不变。", "Rejected: the current tier stays."),
    "review_title": ("风险研判分析会", "Monthly review meeting"),
    "review_intro": (
        "按日期对本所在册人员逐一评估（各阶段模型）并存档："
        "按风险排序、四色预警、模型建议调整的人员、与上次评估相比的变化。",
        "Scores everyone on the office's roll for a date (each stage's model) and keeps the run: "
        "sorted by risk, four-colour alerts, who the model would move between tiers, what moved "
        "since last time.",
    ),
    "run_review": ("生成研判名单", "Run the review"),
    "earlier_runs": ("以往的研判", "Earlier runs"),
    "no_runs": ("尚无研判记录。", "No runs yet."),
    "open": ("打开", "Open"),
    "people": ("人数", "People"),
    "print_view": ("打印版", "Print view"),
    "csv": ("下载 CSV", "Download CSV"),
    "alert": ("预警", "Alert"),
    "mismatch": ("模型建议调整", "Model would move"),
    "mismatch_only": ("只看模型建议调整的人员", "Only those the model would move"),
    "mismatch_raise": ("建议从严", "to strict"),
    "mismatch_lower": ("建议放宽", "to ordinary"),
    "summary": ("变化", "What moved"),
    "period_start": ("开始日期", "From"),
    "period_end": ("结束日期", "To"),
    "by_office": ("按司法所", "By office"),
    "by_caseworker": ("按工作人员", "By caseworker"),
    "by_reason": ("按理由类别", "By reason code"),
    "proposed_n": ("申请", "Proposed"),
    "approved_n": ("批准", "Approved"),
    "rejected_n": ("驳回", "Rejected"),
    "pending_n": ("待审批", "Pending"),
    "overrides_n": ("偏离模型", "Depart from model"),
    "override_rate": ("偏离率", "Override rate"),
    "override_rate_help": (
        "偏离率：批准的调整中，新等级与评估按风险的等级不同的比例。",
        "Override rate: the share of approved changes whose new tier differs from the assessment's tier by risk.",
    ),
    "all_offices": ("全部司法所", "all offices"),
    # auditor
    "nav_log": ("评估记录", "Assessment log"),
    "nav_decisions": ("决定记录", "Decisions"),
    "nav_verify": ("核验审计链", "Verify the trail"),
    "nav_case_records": ("案件记录", "Case records"),
    "case_records_title": ("案件记录（审计链）", "Case records (in the trail)"),
    "case_records_intro": (
        "用户写入案件库的内容，均已记入审计链：每条录入的事件（录入人、人员密钥、内容、时间）"
        "和每次导入（文件的 SHA-256 与数量）。",
        "What users wrote into the case store, each chained in the trail: every event recorded (who, for which "
        "person key, what, when) and every import (its files' SHA-256 and counts).",
    ),
    "case_records_none": ("尚无案件记录。", "No case records yet."),
    "case_event_event_recorded": ("录入事件", "event recorded"),
    "case_event_import": ("导入", "import"),
    "chained_late": (
        "（写入案件库时未及记入审计链，服务启动时补记）",
        " (not chained when written: chained at the service's next start)",
    ),
    "import_summary": (
        "来源 {source}：人员 {persons} 名新增或更新，事件 {events} 条新增；文件 {files}",
        "from {source}: {persons} persons added or updated, {events} events added; files {files}",
    ),
    "what": ("内容", "What"),
    "person_key": ("人员密钥", "Person key"),
    "recorded_by": ("录入人", "Recorded by"),
    "kind": ("类别", "Kind"),
    "log_title": ("评估记录", "Assessment log"),
    "filters": ("筛选", "Filters"),
    "date_from": ("起始日期", "From"),
    "date_to": ("截止日期", "To"),
    "caseworker": ("评估人", "Assessed by"),
    "raw_score": ("模型分数（对数几率）", "raw score (log-odds)"),
    "policy_version": ("策略版本", "policy"),
    "chain_assessments": ("评估", "assessments"),
    "chain_overrides": ("旧版调整", "earlier overrides"),
    "chain_decisions": ("管理等级决定", "tier decisions"),
    "chain_models": ("未通过门槛的模型晋升", "model promotions over the gate"),
    "chain_cases": ("案件记录（录入事件、导入）", "case records (recorded events, imports)"),
    "any": ("全部", "any"),
    "has_decision": ("有调整决定", "Has a decision"),
    "tier_by_rule": ("执行等级与风险等级不同", "Effective tier differs from tier by risk"),
    "apply": ("筛选", "Apply"),
    "reset": ("清除", "Clear"),
    "created": ("记录时间", "Recorded"),
    "older": ("更早的记录", "Older records"),
    "no_rows": ("没有符合条件的记录。", "No records match."),
    "shown": ("显示 {n} 条", "{n} shown"),
    "returned": ("返回的内容（原样）", "What was returned (exactly)"),
    "request": ("请求（人员编号已脱敏）", "The request (person ids keyed)"),
    "explanation": ("完整解释", "Full explanation"),
    "feature": ("因素", "Feature"),
    "value": ("取值", "Value"),
    "contribution": ("贡献（对数几率）", "Contribution (log-odds)"),
    "base_value": ("基准值", "Base value"),
    "chain": ("哈希链", "Hash chain"),
    "verify_title": ("核验审计链", "Verify the audit trail"),
    "verify_intro": (
        "逐条检查每条哈希链（评估、旧版调整、管理等级决定、未通过门槛的模型晋升、案件记录）的哈希和每个已签名检查点，"
        "检查点之后的每条记录须有签名服务的签名；指出第一条被改动、删除、插入或伪造的记录。只有核验通过的状态才会被签名。",
        "Walks every hash chain (assessments, earlier overrides, tier decisions, model promotions over the gate, "
        "case records) against every signed checkpoint; each record after the latest checkpoint must carry the "
        "signer's signature. Names the first record that was changed, deleted, inserted or forged. Only a state "
        "that verifies is signed.",
    ),
    "verify_newer": (
        "最新检查点之后另有 {n} 条记录（{each}），均有签名服务的签名。",
        "{n} record(s) after the latest checkpoint ({each}), each signed by the signer.",
    ),
    "verify_key": ("签名密钥编号：{key}", "Signing key id: {key}"),
    "verify_key_separate": ("（由独立的签名进程持有）", " (held by a separate signer process)"),
    "verify_key_local": (
        "（由服务进程读取的密钥文件；建议改用独立签名进程 riskctl audit signer）",
        " (a key file the service reads; a separate signer, riskctl audit signer, keeps it out of its reach)",
    ),
    "refused_title": ("拒绝签名（待审计员处理）", "Signing refused (until an auditor resolves it)"),
    "refused_intro": (
        "服务发现审计链处于未经核验的状态，拒绝为其签名。请查明原因（如从备份恢复），然后运行 "
        'riskctl audit resolve --note "说明" 结案。',
        "The service found the trail in a state it could not verify and refused to sign it. Find the cause "
        '(restore from a backup, for instance), then close it with riskctl audit resolve --note "what was found".',
    ),
    "refused_row": ("{at}，{by}：{problem}", "{at}, {by}: {problem}"),
    "case_store_title": ("案件库与审计链不一致", "The case store differs from the trail"),
    "anchors_title": ("审计员须自行保存的凭据", "What an auditor must keep outside the service's reach"),
    "anchors_text": (
        "一旦能写入数据库和服务主目录，就能替换检查点文件和公钥。请把公钥（编号 {key}）和检查点流 {stream} "
        "的副本定期复制到服务主机之外、服务账户无法改写的地方（如审计员的电脑、只追加存储），"
        "核验时只用自己的副本：riskctl audit verify --checkpoint 自己的副本 --public-key 自己的公钥。"
        "核验结果会显示所用密钥编号，与其他密钥签署的检查点会被拒绝。",
        "Whoever can write to the database and the service's home can replace the checkpoint file and the public "
        "key. Copy the public key (id {key}) and the checkpoint stream {stream} off the host regularly, to "
        "where the service's account cannot write (your own machine, append-only storage), and verify with your "
        "own copies only: riskctl audit verify --checkpoint YOUR_COPY --public-key YOUR_KEY. The output names the "
        "key it checked; a checkpoint signed by another key is refused.",
    ),
    "verify_now": ("立即核验", "Verify now"),
    "verify_ok": ("审计链完整：已检查 {n} 条记录。", "The trail is intact: {n} records checked."),
    "verify_bad": ("审计链已损坏：{where}。{problem}", "The trail is broken at {where}. {problem}"),
    "heads": ("链头（请抄存到他处，以便日后比对）", "Chain heads (copy them elsewhere to compare later)"),
    "length": ("长度", "Length"),
    "last_hash": ("最后哈希", "Last hash"),
    "alerts_from": ("预警颜色取自 {date} 的风险研判会。", "Alert colours from the review meeting of {date}."),
    "alerts_none": (
        "本所在此日期前尚未召开风险研判会：暂无预警颜色。",
        "No review meeting of this office on or before this date yet: no alert colours.",
    ),
    "checkpoint_none": ("链已损坏，未签发检查点。", "The trail is broken: no checkpoint was signed."),
    "checkpoint_title": ("最新签名检查点", "Latest signed checkpoint"),
    "checkpoint_intro": (
        "本次核验对照了 {n} 个已签名检查点；以下检查点由服务的 Ed25519 密钥签署，可用公钥离线核验"
        "（riskctl audit verify --checkpoint 文件 --public-key 公钥）。",
        "This check compared the trail with {n} signed checkpoints. The checkpoint below is signed "
        "with the service's Ed25519 key: verify it offline with the public key alone "
        "(riskctl audit verify --checkpoint FILE --public-key KEY).",
    ),
    "decisions_title": ("管理等级决定", "Tier decisions"),
    "override_rates": ("偏离模型的比例", "How often decisions depart from the model"),
    "assessments_n": ("评估数", "Assessments"),
    "overridden_n": ("有调整", "With a decision"),
    "rate": ("比例", "Rate"),
    "total": ("合计", "Total"),
    "assessed_by": ("评估人", "Assessed by"),
    "decided_by": ("决定人", "Decided by"),
    # auditor: revalidation on matured outcomes
    "nav_revalidation": ("年度再验证", "Revalidation"),
    "reval_title": ("模型再验证（已到期结局）", "Revalidation on matured outcomes"),
    "reval_intro": (
        "只计入在截至日期前已满观察期的正式评估（观察期内已知再犯，或随访已覆盖整个观察期）；未到期的只计数不计入。"
        "风险研判会的评分不是正式评估，单独列出。"
        "O/E 为观察到的再犯数除以预计再犯数（概率之和）：小于 1 表示风险被高估。",
        "Only formal assessments whose whole horizon has passed by the as-of date count (a re-offence within the "
        "horizon known by then, or follow-up covering it); immature ones are counted and left out. Review-meeting "
        "scores are not formal assessments and are shown apart. O/E is re-offences observed over re-offences "
        "expected (the sum of the probabilities): below 1 the risk was overstated.",
    ),
    "reval_none": (
        "尚无再验证报告：请运行 riskctl revalidate --as-of 日期。",
        "No revalidation report yet: run riskctl revalidate --as-of DATE.",
    ),
    "reval_as_of": ("结局截至", "Outcomes known by"),
    "reval_show": ("查看", "Show"),
    "reval_counts": ("各状态的评估数", "Assessments by status"),
    "reval_performance": ("区分度与校准（按阶段、模型版本、政策版本）", "Discrimination and calibration"),
    "reval_bands": ("各风险等级的观察与预计", "Observed against predicted, by band"),
    "reval_groups": ("群体内校准（自助法区间）", "Calibration within groups (bootstrap intervals)"),
    "reval_change": ("两次评估间风险变化与结局", "Did outcomes follow the change of risk?"),
    "reval_overrides": ("偏离按风险等级的批准决定与结局", "Overrides: approved decisions against the tier by risk"),
    "reval_override_reasons": ("按理由代码", "Overrides by reason code"),
    "reval_review": ("风险研判会评分（单列）", "Review-meeting scores (apart)"),
}


def text(key: str, lang: Lang, /, **values: object) -> str:
    """The console text ``key`` in ``lang``, with ``{name}`` fields filled from ``values``."""
    zh, en = _TEXT[key]
    words = zh if lang == "zh" else en
    return words.format(**values) if values else words


def keys() -> frozenset[str]:
    """Every text key (for tests)."""
    return frozenset(_TEXT)
