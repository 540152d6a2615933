"""Nothing leaves the machine unless configured (design.md, issue 23).

The fast tests check the switch itself: ``riskctl`` turns MLflow's and BentoML's usage telemetry off unless
``RISK_TELEMETRY=true``. The slow ones run ``riskctl demo`` (cohort, training, promotion, the service
scoring one person) and ``riskctl serve`` under a guard (``tests/outbound_guard/sitecustomize.py``, loaded
by every Python process they start) that refuses and records any attempt to resolve a foreign host name or
connect outside loopback; they expect no attempt at all. A control run with telemetry turned back on shows
the guard sees what the libraries try, so a quiet run means something.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from features.settings import TELEMETRY_OFF, keep_telemetry_off
from features.vocab import Stage
from serving.cli import app, running_service

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).resolve().parent / "outbound_guard"
# variables under which MLflow turns its telemetry off by itself (a test run, CI): the guarded runs drop them,
# so that only the project's own switch can keep the libraries quiet
SELF_QUIETING = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE")


@pytest.fixture
def no_telemetry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the variables set, and each restored afterwards (the switch sets them in ``os.environ``)."""
    for name in [*TELEMETRY_OFF, "RISK_TELEMETRY"]:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_telemetry_env")
def test_telemetry_is_off_unless_a_setting_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keep_telemetry_off()
    assert {name: os.environ[name] for name in TELEMETRY_OFF} == TELEMETRY_OFF
    for name in TELEMETRY_OFF:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RISK_TELEMETRY", "true")
    assert not keep_telemetry_off()
    assert not set(TELEMETRY_OFF) & set(os.environ)  # the libraries' own defaults apply


@pytest.mark.usefixtures("no_telemetry_env")
def test_every_riskctl_command_runs_with_telemetry_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["token", "--role", "auditor", "--user", "someone"])
    assert result.exit_code == 0, result.output
    assert {name: os.environ[name] for name in TELEMETRY_OFF} == TELEMETRY_OFF


# ----------------------------------------------------------------------------------------------- guarded runs


def guarded_env(home: Path, log: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SELF_QUIETING and k not in TELEMETRY_OFF}
    env.pop("RISK_TELEMETRY", None)
    path = os.pathsep.join(p for p in (str(GUARD), str(ROOT), env.get("PYTHONPATH", "")) if p)
    return {
        **env,
        "PYTHONPATH": path,
        "RISK_OUTBOUND_LOG": str(log),
        "RISK_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        **extra,
    }


def attempts(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def guarded_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``riskctl demo --no-serve`` on a small cohort under the guard: (its home, the guard's log)."""
    out = tmp_path_factory.mktemp("guarded-demo")
    log = out / "outbound.log"
    env = guarded_env(out / "home", log)
    cmd = [sys.executable, "-m", "serving.cli", "demo", "--out", str(out), "--persons", "400", "--no-serve"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    yield out / "home", log


@pytest.mark.slow
def test_the_demo_contacts_no_one(guarded_demo: tuple[Path, Path]) -> None:
    """Cohort, features, training, registry, promotion, the BentoML store and a served, scored request."""
    _, log = guarded_demo
    assert attempts(log) == []


@pytest.mark.slow
def test_the_service_contacts_no_one(guarded_demo: tuple[Path, Path], tmp_path: Path) -> None:
    """``bentoml serve serving.api:RiskService`` started directly, as a platform or a Bento does (not through
    riskctl, which sets the variables first: BentoML's CLI has decided whether to track before it imports the
    service), asked for the API page and its assets, the console, a score and the platform's endpoints."""
    home, _ = guarded_demo
    log = tmp_path / "outbound.log"
    token = (home / "tokens" / "caseworker-caseworker.token").read_text().strip()
    stored = [s.value for s in Stage if (home / "bentoml" / "models" / f"reoffence-{s.value}").is_dir()]
    env = guarded_env(home, log, RISK_SERVED_STAGES=",".join(stored))  # the stages the demo promoted
    with running_service(env=env, log_path=tmp_path / "serve.log") as url:
        page = httpx.get(f"{url}/docs", timeout=30)
        assert page.status_code == 200
        for path in ("/docs.json", "/docs.js", "/static_content/swagger-ui-bundle.js", "/console/login", "/metrics"):
            answer = httpx.get(f"{url}{path}", timeout=30)
            assert answer.status_code == 200, path
            assert answer.headers["x-content-type-options"] == "nosniff", path  # tests/test_headers.py, live
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/models", headers=auth, timeout=30).status_code in (200, 403)
    assert attempts(log) == []


@pytest.mark.slow
def test_the_guard_sees_the_telemetry_a_setting_turns_back_on(tmp_path: Path) -> None:
    """The control: with RISK_TELEMETRY=true, MLflow's and BentoML's first contacts are refused and recorded."""
    log = tmp_path / "outbound.log"
    env = guarded_env(tmp_path / "home", log, RISK_TELEMETRY="true")
    script = (
        "from features.settings import keep_telemetry_off\n"
        "assert not keep_telemetry_off()\n"
        "import sys, time, mlflow\n"
        "mlflow.set_tracking_uri('sqlite:///' + sys.argv[1])\n"
        "mlflow.set_experiment('control')\n"
        "time.sleep(3)\n"  # MLflow fetches its telemetry configuration from a thread
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "mlflow.db")], env=env, cwd=ROOT, check=True, timeout=120
    )
    subprocess.run(
        [sys.executable, "-m", "bentoml", "models", "list"], env=env, cwd=ROOT, check=True, timeout=120
    )  # a BentoML command sends a usage event when it ends
    seen = "\n".join(attempts(log))
    assert "mlflow-telemetry" in seen and "bentoml.com" in seen, seen
