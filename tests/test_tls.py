"""HTTPS (issue 23): ``riskctl serve --ssl-certfile --ssl-keyfile``, a trusted proxy's scheme, and the sign-in
page that says HTTPS is needed (and how) when it came over plain HTTP from a host other than this machine."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from service_support import ServiceModels, in_process_service, write_auth
from typer.testing import CliRunner

from features.vocab import Stage
from serving.cli import app, free_port, running_server


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keyfile.chmod(0o600)
    return certfile, keyfile


# ----------------------------------------------------------------------------------------------- the command
def test_https_needs_both_files_and_readable_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    certfile, _ = self_signed(tmp_path)
    for args, said in (
        (["--ssl-certfile", str(certfile)], "both --ssl-certfile and --ssl-keyfile"),
        (["--ssl-certfile", str(certfile), "--ssl-keyfile", str(tmp_path / "none.pem")], "no readable file"),
    ):
        result = CliRunner().invoke(app, ["serve", "--no-import", *args])
        assert result.exit_code == 2 and said in result.output, result.output


def test_serve_hands_tls_and_the_trusted_proxies_to_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = "serving.cli._service"  # where serve finds what it calls
    certfile, keyfile = self_signed(tmp_path)
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.setenv("RISK_TRUSTED_PROXIES", "10.0.0.7")
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setattr(f"{here}.stored_stages", lambda settings: list(Stage))
    seen: dict[str, Any] = {}

    def execve(path: str, cmd: list[str], env: dict[str, str]) -> None:
        seen.update(cmd=cmd, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(f"{here}.os.execve", execve)
    args = ["serve", "--no-import", "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["cmd"][-4:] == ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
    assert seen["env"]["FORWARDED_ALLOW_IPS"] == "10.0.0.7"
    assert "serving on https://127.0.0.1:3000" in result.output


# ----------------------------------------------------------------------------------------------- the sign-in page
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, service_models: ServiceModels) -> Path:
    path = tmp_path_factory.mktemp("tls-home")
    write_auth(path)
    return path


@pytest.mark.parametrize(
    ("base", "says"),
    [
        ("http://console.office.example:3000", True),
        ("http://192.168.1.20:3000", True),
        ("https://console.office.example", False),
        ("http://127.0.0.1:3000", False),
        ("http://localhost:3000", False),
    ],
)
def test_the_sign_in_page_says_https_is_needed_over_plain_http_from_another_host(
    home: Path, base: str, says: bool
) -> None:
    with in_process_service(home, base_url=base) as c:
        page = c.get("/console/login")
        assert page.status_code == 200
        assert ('id="https-needed"' in page.text) == says
        if says:
            assert "请通过 HTTPS 打开控制台" in page.text and "--ssl-certfile" in page.text
            english = c.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
            assert "Open the console over HTTPS" in english and "docs/operations.md" in english
            # the browser dropped the form's Secure cookie: the refusal says why, not "anti-forgery token"
            c.cookies.clear()
            refused = c.post("/console/login", data={"csrf": "x", "token": "t"})
            assert refused.status_code == 403 and "HTTPS" in refused.text and "防伪令牌" not in refused.text


def test_no_https_notice_when_the_cookies_are_not_secure(home: Path) -> None:
    with in_process_service(home, base_url="http://console.office.example", RISK_CONSOLE_SECURE_COOKIE="false") as c:
        assert 'id="https-needed"' not in c.get("/console/login").text


# ----------------------------------------------------------------------------------------------- a real server
@pytest.mark.slow
def test_riskctl_serves_https_with_hsts(tmp_path: Path, service_models: ServiceModels) -> None:
    write_auth(tmp_path)
    certfile, keyfile = self_signed(tmp_path)
    port = free_port()
    riskctl = str(Path(sys.executable).with_name("riskctl"))
    cmd = [riskctl, "serve", "--no-import", "--port", str(port), "--ssl-certfile", str(certfile)]
    cmd += ["--ssl-keyfile", str(keyfile)]
    env = {"RISK_HOME": str(tmp_path)}
    with running_server(cmd, port=port, ready_path="/readyz", env=env, tls_ca=certfile) as url:
        assert url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(certfile))
        page = httpx.get(f"{url}/console/login", verify=verify, timeout=30)
        assert page.status_code == 200 and 'id="https-needed"' not in page.text
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        assert httpx.get(f"{url}/docs", verify=verify, timeout=30).headers["strict-transport-security"]
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).raise_for_status()


@pytest.fixture
def behind_proxy(tmp_path: Path, service_models: ServiceModels, request: pytest.FixtureRequest) -> Iterator[str]:
    write_auth(tmp_path)
    port = free_port()
    riskctl = str(Path(sys.executable).with_name("riskctl"))
    env = {"RISK_HOME": str(tmp_path), "RISK_TRUSTED_PROXIES": request.param}
    cmd = [riskctl, "serve", "--no-import", "--port", str(port)]
    with running_server(cmd, port=port, ready_path="/readyz", env=env) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize(
    ("behind_proxy", "trusted"), [("127.0.0.1", True), ("10.9.9.9", False)], indirect=["behind_proxy"]
)
def test_a_trusted_proxys_scheme_is_believed_and_no_other(behind_proxy: str, trusted: bool) -> None:
    """The proxy on this machine ends TLS and says so in X-Forwarded-Proto; a request from an address that is
    not a trusted proxy's is taken as it came (plain HTTP: no HSTS)."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5", "Host": "console.office.example"}
    page = httpx.get(f"{behind_proxy}/console/login", headers=forwarded, timeout=30)
    assert ("strict-transport-security" in page.headers) == trusted
    assert ('id="https-needed"' in page.text) == (not trusted)
