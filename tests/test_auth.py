"""Auth: tokens created once and stored hashed, 401/403 and each role's permissions."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from serving.auth import (
    ROLE_PERMISSIONS,
    AuthConfig,
    Authenticator,
    AuthError,
    Permission,
    Principal,
    Role,
    hash_token,
    load_or_create,
)


@pytest.fixture()
def created(tmp_path: Path) -> tuple[AuthConfig, dict[Role, str]]:
    config, tokens = load_or_create(tmp_path / "conf" / "auth.json")
    assert tokens is not None  # a first run: the tokens are returned
    return config, tokens


@pytest.fixture()
def auth(created: tuple[AuthConfig, dict[Role, str]]) -> Authenticator:
    return Authenticator(created[0])


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_create_on_first_run_returns_tokens_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "conf" / "auth.json"
    with caplog.at_level(logging.DEBUG):
        config, tokens = load_or_create(path)
    assert tokens is not None
    assert set(tokens) == set(Role) and len(set(tokens.values())) == len(Role)
    assert all(len(t) >= 40 for t in tokens.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, none = load_or_create(path)
    assert none is None and again == config
    text = path.read_text()
    assert all(t not in text and hash_token(t) in text for t in tokens.values())
    assert all(t not in caplog.text for t in tokens.values())
    assert len(config.audit_key()) == 32 and not list(path.parent.glob(".*.tmp"))


def test_yaml_config(tmp_path: Path) -> None:
    config, tokens = load_or_create(tmp_path / "auth.yaml")
    assert tokens is not None and load_or_create(tmp_path / "auth.yaml") == (config, None)


def test_each_role_authenticates_with_its_token(
    created: tuple[AuthConfig, dict[Role, str]], auth: Authenticator
) -> None:
    _, tokens = created
    for role, token in tokens.items():
        assert auth.authenticate(bearer(token)) == Principal(role, role.value)
    assert auth.authenticate(f"bearer   {tokens[Role.AUDITOR]}  ").role is Role.AUDITOR


@pytest.mark.parametrize(
    "header", [None, "", "   ", "Bearer", "Basic abc", "Bearer a b", "Token xyz", "Bearer not-a-known-token"]
)
def test_401_for_missing_malformed_or_unknown(auth: Authenticator, header: str | None) -> None:
    with pytest.raises(AuthError) as err:
        auth.authenticate(header)
    assert err.value.status == 401 and err.value.message
    assert err.value.headers == {"WWW-Authenticate": "Bearer"}


def test_error_messages_never_hold_the_token(
    created: tuple[AuthConfig, dict[Role, str]], auth: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    _, tokens = created
    wrong = tokens[Role.CASEWORKER] + "x"
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as err:
        auth.authenticate(bearer(wrong))
    assert wrong not in str(err.value) and wrong not in err.value.message and wrong not in caplog.text
    principal = auth.authenticate(bearer(tokens[Role.MODELER]))
    with pytest.raises(AuthError) as err:
        auth.require(principal, Permission.SCORE)
    assert tokens[Role.MODELER] not in err.value.message


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (
            Role.CASEWORKER,
            {Permission.SCORE, Permission.RECORD_EVENT, Permission.READ_CASES, Permission.REVIEW, Permission.PROPOSE},
        ),
        (Role.SUPERVISOR, {Permission.READ_CASES, Permission.REVIEW, Permission.DECIDE, Permission.REPORT_DECISIONS}),
        (Role.AUDITOR, {Permission.READ_ASSESSMENTS, Permission.VERIFY, Permission.REPORT_DECISIONS}),
        (Role.MODELER, {Permission.MODEL_INFO}),
    ],
)
def test_role_permissions(
    created: tuple[AuthConfig, dict[Role, str]], auth: Authenticator, role: Role, allowed: set[Permission]
) -> None:
    assert ROLE_PERMISSIONS[role] == allowed
    principal = auth.authenticate(bearer(created[1][role]))
    for permission in Permission:
        if permission in allowed:
            auth.require(principal, permission)
            assert auth.authorize(bearer(created[1][role]), permission) == principal
        else:
            with pytest.raises(AuthError) as err:
                auth.require(principal, permission)
            assert err.value.status == 403 and role.value in err.value.message and err.value.headers == {}


def test_403_for_wrong_role(created: tuple[AuthConfig, dict[Role, str]], auth: Authenticator) -> None:
    with pytest.raises(AuthError) as err:
        auth.authorize(bearer(created[1][Role.CASEWORKER]), Permission.VERIFY)
    assert err.value.status == 403


def test_config_refuses_raw_tokens_and_bad_secrets() -> None:
    good = {"tokens": {hash_token("t"): {"role": "auditor", "user": "zhang"}}, "audit_secret": "ab" * 32}
    assert AuthConfig.model_validate(good).tokens[hash_token("t")].user == "zhang"
    with pytest.raises(ValueError, match="SHA-256"):
        AuthConfig.model_validate({**good, "tokens": {"raw-token": {"role": "auditor", "user": "zhang"}}})
    with pytest.raises(ValueError):
        AuthConfig.model_validate({**good, "audit_secret": "zz" * 32})
    with pytest.raises(ValueError):
        AuthConfig.model_validate({**good, "tokens": {hash_token("t"): {"role": "admin", "user": "x"}}})


def test_invalid_file_is_named_without_echoing_values(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(
        json.dumps({"tokens": {"my-raw-token": {"role": "root", "user": "x"}}, "audit_secret": "secret-value"})
    )
    path.chmod(0o600)
    with pytest.raises(ValueError, match="invalid auth config") as err:
        load_or_create(path)
    assert "my-raw-token" not in str(err.value) and "secret-value" not in str(err.value)
    assert str(path) in str(err.value)


def test_user_names_come_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(
        json.dumps({"tokens": {hash_token("tok-1"): {"role": "caseworker", "user": "wang"}}, "audit_secret": "cd" * 32})
    )
    config, tokens = load_or_create(path)
    assert tokens is None
    assert Authenticator(config).authenticate("Bearer tok-1") == Principal(Role.CASEWORKER, "wang")
