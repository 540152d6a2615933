"""``riskctl serve``, ``score``, ``build``, ``token``, ``revoke``, ``models import|list`` and ``audit ...``,
and the demo's last step (score one person through a running service)."""

from __future__ import annotations

import enum
import getpass
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from features.cli import CliError, console, progress
from features.vocab import Stage
from serving.cli._audit import audit_app
from serving.cli._processes import SERVICE, running_service
from serving.cli._runtime import (
    ensure_tokens,
    import_models,
    office_tokens,
    offline_scorer,
    served_env,
    stages_to_serve,
    stored_stages,
    use_project_bentoml_home,
    write_token_file,
)
from serving.settings import ServiceSettings, get_settings

log = logging.getLogger(__name__)
models_app = typer.Typer(help="The models in service (BentoML model store).", no_args_is_help=True)


class LangChoice(enum.StrEnum):
    """``--lang``: the language of labels and reasons."""

    ZH = "zh"
    EN = "en"


class RoleChoice(enum.StrEnum):
    """``--role`` of ``riskctl token`` (serving.auth.Role)."""

    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    MODELER = "modeler"


@models_app.command("import")
def models_import() -> None:
    """Copy each stage's MLflow @champion into the BentoML model store (the service serves those)."""
    settings = get_settings()
    use_project_bentoml_home(settings)
    import_models(settings)


@models_app.command("list")
def models_list(
    stage: Annotated[Stage | None, typer.Option(help="one stage (default: all)")] = None,
    history: Annotated[
        bool, typer.Option("--history", help="every promotion decision per version: who, when, what, which criteria")
    ] = False,
) -> None:
    """Registered versions per stage: alias, kind (logistic or lightgbm), gate decision and test metrics.

    With --history, each version's promotion history instead: every decision (promoted, refused, override,
    rollback) with its time, user, alias, the champion it was judged against and the failed criteria.
    On a terminal a table; written to a pipe or a file, a Markdown table that keeps every column.
    """
    from rich.table import Table

    from training.registry import HEADER, HISTORY_HEADER, history_cells, registered_versions

    rows = registered_versions(get_settings(), [stage] if stage else None)
    if not rows:
        console.print("no registered models: riskctl train --promote", markup=False)
        return
    header, cells = (
        (HISTORY_HEADER, [c for r in rows for c in history_cells(r)])
        if history
        else (
            HEADER,
            [r.cells() for r in rows],
        )
    )
    if history and not cells:
        console.print("no promotion decision recorded yet: riskctl promote (or train --promote)", markup=False)
        return
    if not console.is_terminal:
        typer.echo(
            "\n".join(
                ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                + ["| " + " | ".join(c) + " |" for c in cells]
            )
        )
        return
    title = "Promotion history" if history else "Registered stage models"
    table = Table(title=title, show_lines=False)
    numeric = ("version", "AUC", "Brier", "ECE", "flagged", "FPR gap")
    for name in header:
        table.add_column(name, justify="right" if name in numeric else "left", overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def serve(
    port: Annotated[int, typer.Option(help="port on localhost")] = 3000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    import_first: Annotated[
        bool, typer.Option("--import/--no-import", help="import the MLflow @champion models first")
    ] = True,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="serve HTTPS with this certificate (PEM; with --ssl-keyfile)")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="the certificate's private key (PEM)")] = None,
) -> None:
    """Start the scoring service (bentoml serve) with every stage's @champion model, in the foreground.

    A stage whose registered model has no @champion is not served (its requests are answered with 503 and what
    to do); with no champion at all, or a registry that cannot be read, the service does not start. With
    --no-import it serves the stages whose models are in the BentoML store. RISK_SERVED_STAGES, when set,
    narrows either. This process becomes ``bentoml serve``
    (exec), so a supervisor's signals reach the server itself; its workers stop when it dies, even by
    ``kill -9`` (serving/api/_process.py).

    With --ssl-certfile and --ssl-keyfile it serves HTTPS (and every answer says Strict-Transport-Security).
    Behind a reverse proxy that ends TLS, RISK_TRUSTED_PROXIES names the proxies whose X-Forwarded-Proto is
    believed (docs/operations.md).
    """
    settings = get_settings()
    tls = tls_options(ssl_certfile, ssl_keyfile)
    use_project_bentoml_home(settings)
    if import_first:
        stages = stages_to_serve(settings, import_models(settings))
    else:
        stages = stages_to_serve(settings, stored_stages(settings), having="a model in the BentoML store")
    exec_service(settings, host=host, port=port, env=served_env(stages), tls=tls)


def tls_options(certfile: Path | None, keyfile: Path | None) -> list[str]:
    """``bentoml serve``'s TLS options for a certificate and its key (both or neither, each readable)."""
    if certfile is None and keyfile is None:
        return []
    if certfile is None or keyfile is None:
        raise CliError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file() or not os.access(path, os.R_OK):
            raise CliError(f"{option} {path}: no readable file there")
    return ["--ssl-certfile", str(certfile.resolve()), "--ssl-keyfile", str(keyfile.resolve())]


def exec_service(
    settings: ServiceSettings, *, host: str, port: int, env: dict[str, str], tls: list[str] | None = None
) -> NoReturn:
    """Become ``bentoml serve`` of the service on ``host:port`` with ``env`` added to the environment (``tls``:
    :func:`tls_options`); the proxies of ``RISK_TRUSTED_PROXIES`` are trusted unless FORWARDED_ALLOW_IPS is set."""
    ensure_tokens(settings)
    cmd = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port), *(tls or [])]
    env = {"FORWARDED_ALLOW_IPS": os.environ.get("FORWARDED_ALLOW_IPS", settings.trusted_proxies), **env}
    scheme = "https" if tls else "http"
    console.print(
        f"serving on {scheme}://{host}:{port}: web console {scheme}://{host}:{port}/console/ (sign in with a token "
        f"from {settings.home / 'tokens'}), API page /docs  [{' '.join(cmd[1:])}]",
        markup=False,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, {**os.environ, **env})  # never returns


def score(
    infile: Annotated[
        Path, typer.Option("--in", help="JSON Lines: one score request per line (person, events, stage, as_of, lang)")
    ],
    outfile: Annotated[Path, typer.Option("--out", help="JSON Lines: one assessment per line")],
    actor: Annotated[str | None, typer.Option(help="who asks (stored in the audit trail); default cli:<user>")] = None,
    chunk: Annotated[int, typer.Option(min=1, help="records scored per step")] = 1000,
) -> None:
    """Score a file offline with the served models; every answer is stored in the audit trail.

    The whole file is validated first: a bad record is refused with its line and field, and
    nothing is scored, stored or written.
    """
    from serving.scoring import NoModelError

    settings = get_settings()
    use_project_bentoml_home(settings)
    requests = read_requests(infile)
    scorer, audit = offline_scorer(settings)
    try:  # the whole file's stages first: a stage no model serves refuses the file before anything is scored
        scorer.require(request.stage for request in requests)
    except NoModelError as err:
        raise CliError(f"refused {infile}: {err}") from None
    actor = actor or f"cli:{getpass.getuser()}"
    tmp = outfile.with_name(f".{outfile.name}.partial")
    outfile.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    scored = []
    with progress() as bar:
        task = bar.add_task("scoring", total=len(requests))
        for i in range(0, len(requests), chunk):
            scored += scorer.score(requests[i : i + chunk])
            bar.advance(task, min(chunk, len(requests) - i))
    audit.append_many([s.audit_fields(actor) for s in scored])  # one transaction: all or nothing
    with tmp.open("w", encoding="utf-8") as fh:
        for s in scored:
            fh.write(s.assessment.model_dump_json() + "\n")
    tmp.replace(outfile)
    elapsed = time.perf_counter() - started
    console.print(f"{len(scored):,} assessments in {elapsed:.1f} s -> {outfile} (stored in the audit trail)")


def read_requests(path: Path) -> list[Any]:
    """Score requests from JSON Lines; refuses the file naming the line and field of every problem."""
    from pydantic import ValidationError

    from serving.scoring.schemas import ScoreRequest, field_path

    requests, problems = [], []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                requests.append(ScoreRequest.model_validate_json(line))
            except ValidationError as err:
                for e in err.errors(include_url=False):
                    where = field_path(e["loc"], whole="record")
                    problems.append(f"line {line_no}, {where}: {e['msg']}")
    if problems:
        shown = "\n  ".join(problems[:20])
        raise CliError(f"refused {path}: {len(problems)} problem(s), nothing scored\n  {shown}")
    if not requests:
        raise CliError(f"refused {path}: no records")
    return requests


def build(
    import_first: Annotated[
        bool,
        typer.Option("--import/--no-import", help="import every stage's MLflow @champion first (as serve does)"),
    ] = True,
) -> None:
    """Build a Bento (service code + the three models) that serves without MLflow.

    By default each stage's ``@champion`` is imported from MLflow into the BentoML store first (what
    ``riskctl models import`` does), so a fresh home builds in one step; with --no-import the models already
    in the store are packed. A stage with no model to pack is refused before anything is built, with the
    command that gives it one.
    """
    from serving.scoring import stages_without_champion, stored_model
    from training.registry import RegistryError

    settings = get_settings()
    use_project_bentoml_home(settings)
    if import_first:  # every stage's champion is checked before any is imported: a refusal changes nothing
        where = f"@{settings.champion_alias} in the model registry ({settings.resolved_tracking_uri()})"
        try:
            missing = [stage.value for stage in stages_without_champion(settings)]
        except RegistryError as err:
            uri = settings.resolved_tracking_uri()
            raise CliError(f"the model registry ({uri}) could not be read: {err}") from None
        if not missing:
            imported = import_models(settings)
            missing = [stage.value for stage in Stage if stage not in imported]
    else:
        missing = [stage.value for stage in Stage if stored_model(settings, stage) is None]
        where = "model in the BentoML store (riskctl models import copies the champions there)"
    if missing:  # the service declares one model per stage, and a Bento carries each one it declares
        raise CliError(build_refusal(missing, where))
    bento = build_bento()
    console.print(
        f"built {bento.tag}; serve it with: BENTOML_HOME={os.environ['BENTOML_HOME']} bentoml serve {bento.tag}"
    )


def build_refusal(missing: list[str], where: str) -> str:
    """Why a Bento cannot be built, and the commands that make it buildable."""
    todo = "; ".join(
        f"riskctl train --data DIR --stage {s} --promote (or riskctl promote --stage {s} --version V "
        '--override-reason "...")'
        for s in missing
    )
    return (
        f"a Bento carries a model for every stage, and {', '.join(missing)} has no {where}: {todo}; then riskctl build"
    )


def build_bento() -> Any:
    """``bentoml build`` of the service from the project root, with the models in the BentoML store."""
    import importlib.metadata as md

    import bentoml

    root = Path(__file__).resolve().parents[1]
    deps = [r for r in md.requires("reoffence-risk") or [] if "extra ==" not in r]
    return bentoml.bentos.build(
        SERVICE,
        build_ctx=str(root),
        description="Re-offending risk assessment service",
        include=[
            "features/**/*.py",
            "features/**/*.md",
            "models/**/*.py",
            "models/*.yaml",
            "training/**/*.py",
            "training/*.yaml",
            "evaluation/**/*.py",
            "serving/**/*.py",
            "serving/**/*.yaml",  # the review policy
            "serving/**/templates/*",  # the console's and the review's pages
            "serving/**/static/*",
        ],
        python={"packages": deps, "lock_packages": False},
    )


def token(
    role: Annotated[RoleChoice, typer.Option(help="the role the token grants")],
    user: Annotated[str, typer.Option(help="who the token is for (recorded as the actor)")],
    show: Annotated[
        bool,
        typer.Option(
            "--print",
            help="print the raw token to standard output instead of writing it to a file (for a script to hand over)",
        ),
    ] = False,
    office: Annotated[str | None, typer.Option(help="office (司法所) of a caseworker or supervisor")] = None,
) -> None:
    """Issue a token for a user (replacing their earlier one in that role) into a file only they can read."""
    from serving.auth import Role, issue_token

    settings = get_settings()
    ensure_tokens(settings)
    if Role(role.value) in (Role.CASEWORKER, Role.SUPERVISOR) and not office:
        console.print(f"[yellow]no --office:[/yellow] a {role.value} token without an office cannot use the case store")
    raw = issue_token(settings.resolved_auth_file(), role=Role(role.value), user=user, office=office)
    if show:
        typer.echo(raw)
        return
    path = write_token_file(settings, role.value, user, raw)
    console.print(f"{role.value} token for {user} written to {path} (mode 0600); their earlier one no longer works")


def revoke(
    user: Annotated[str, typer.Option(help="whose tokens to revoke")],
    role: Annotated[RoleChoice | None, typer.Option(help="only this role's token (default: every role)")] = None,
) -> None:
    """Revoke a user's tokens; the running service refuses them within seconds, without a restart."""
    from serving.auth import Role, revoke_tokens

    settings = get_settings()
    removed = revoke_tokens(settings.resolved_auth_file(), user=user, role=Role(role.value) if role else None)
    console.print(f"revoked {removed} token(s) of {user}")


def demo_service(settings: ServiceSettings, tables: Any, *, lang: str = "zh") -> dict[str, str]:
    """The demo's last step: import the champions, score one person through a running service that serves the
    stages that have one, and show the answer. Returns the environment that serves those stages."""
    import pandas as pd

    from serving.auth import issue_token
    from serving.scoring import requests_from_tables

    use_project_bentoml_home(settings)
    # refuses when no stage has a champion: nothing could be served
    served = stages_to_serve(settings, import_models(settings, explain=False))  # the demo said why above
    env = served_env(served)
    unserved = [stage.value for stage in Stage if stage not in served]
    console.print(
        f"served: {', '.join(s.value for s in served)}"
        + (f"; not served (answered 503 until promoted): {', '.join(unserved)}" if unserved else ""),
        markup=False,
    )
    ensure_tokens(settings)
    office = str(tables.persons["office"].value_counts().idxmax())  # the busiest office of the demo's cohort
    written = office_tokens(settings, office)
    console.print(f"caseworker and supervisor of office {office}: {', '.join(p.name for p in written)}")
    tok = issue_token(settings.resolved_auth_file(), role="caseworker", user="demo", office=office)
    # a person of that office from the case store, scored by id as a caseworker does: one whose term has
    # ended (every stage's window is open) and who was not revoked, with the most events; at mid-term if that
    # stage is served, else at the first stage that is
    stage = Stage.MIDTERM if Stage.MIDTERM in served else served[0]
    persons = tables.persons[
        (tables.persons["office"] == office) & (tables.persons["supervision_end"] <= pd.Timestamp.today().normalize())
    ]
    if tables.outcomes is not None:
        revoked = tables.outcomes.loc[tables.outcomes["revocation_date"].notna(), "person_id"]
        persons = persons[~persons["person_id"].isin(revoked)]
    requests = requests_from_tables(persons.head(50), tables.events, stage, lang=lang)
    person_id = max(requests, key=lambda r: len(r["events"]))["person"]["person_id"]
    log_path = settings.home / "demo-serve.log"
    console.print(f"starting the service (bentoml serve; its log: {log_path}) to score one person...")
    with running_service(log_path=log_path, env=env) as url:
        body = {"person_id": person_id, "stage": stage.value, "lang": lang}
        answer = score_example(url, tok, body, path="/cases/score")
    show_assessment(answer, lang=lang)
    console.print(
        f"\naccess tokens: {settings.home / 'tokens'} (one file per role; more with riskctl token "
        "--role caseworker --user NAME); the service again later: .venv/bin/riskctl serve --port 3000"
    )
    return env


#: the words of :func:`show_assessment`, per language
_SHOWN = {
    "zh": {
        "head": "{stage} {person}（评估日 {as_of}）：{months:g}个月内再犯概率 {p:.1%}，"
        "风险等级{band}，管理等级{tier}（{why}）",
        "raises": "↑",
        "lowers": "↓",
        "size": "风险{pts:+.1f}个百分点",
        "log_odds": "对数几率 {c:+.3f}",
        "model": "模型 {name} 第{version}版，评估编号 {id}",
    },
    "en": {
        "head": "{stage} {person} as of {as_of}: probability {p:.1%} of a new offence within {months:g} months, "
        "{band} band, tier {tier} ({why})",
        "raises": "+",
        "lowers": "-",
        "size": "{pts:+.1f} percentage points of risk",
        "log_odds": "{c:+.3f} log-odds",
        "model": "model {name} version {version}, assessment {id}",
    },
}


def show_assessment(a: dict[str, Any], *, lang: str = "zh") -> None:
    """One assessment as a caseworker reads it, all in ``lang``."""
    words = _SHOWN[lang]
    console.print(
        words["head"].format(
            stage=a["stage"]["label"],
            person=a["person_id"],
            as_of=a["as_of"],
            months=a["horizon_months"],
            p=a["probability"],
            band=a["band"]["label"],
            tier=a["tier"]["tier"]["label"],
            why=a["tier"]["text"],
        )
    )
    for r in a["reasons"]:  # answers stored before the sizes in points of risk carry log-odds only
        size = (
            words["size"].format(pts=r["points"])
            if r.get("points") is not None
            else words["log_odds"].format(c=r["contribution"])
        )
        console.print(f"  {words[r['direction']]} {r['text']}  ({size})")
    console.print(
        "  " + words["model"].format(name=a["model"]["name"], version=a["model"]["version"], id=a["assessment_id"])
    )


def score_example(base_url: str, token: str, request: dict[str, Any], *, path: str = "/score") -> dict[str, Any]:
    """POST one request to a running service's ``/score`` or ``/cases/score`` (used by the demo)."""
    import httpx

    r = httpx.post(f"{base_url}{path}", json=request, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    answer: dict[str, Any] = r.json()
    return answer


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("serve")(serve)
    app.command("score")(score)
    app.command("build")(build)
    app.command("token")(token)
    app.command("revoke")(revoke)
    app.add_typer(audit_app, name="audit")
