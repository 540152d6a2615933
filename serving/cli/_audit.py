"""``riskctl audit``: verify the trail against the auditor's own anchors, sign a verified state, run the
separate signer, resolve a refusal, make an encryption key (serving.audit; heavy imports in the commands).

Output is plain text in a pipe and coloured in a terminal (rich decides), never markup.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from features.cli import console
from serving.settings import get_settings

if TYPE_CHECKING:
    from serving.audit import VerifyResult

audit_app = typer.Typer(
    help="The audit trail: verify it against signed checkpoints, sign a verified state, run the signer.",
    no_args_is_help=True,
)


def _say(word: str, style: str, rest: str) -> None:
    console.print(Text.assemble((word, style), rest))


@audit_app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="checkpoint file: your own copy of the checkpoint stream (JSON Lines), or one checkpoint "
            "copied from /verify"
        ),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="your own copy of the signer's Ed25519 public key (PEM)")
    ] = None,
    url: Annotated[str | None, typer.Option(help="audit store URL; default RISK_AUDIT_URL or <home>/audit.db")] = None,
    allow_newer: Annotated[
        bool, typer.Option(help="accept records after the latest checkpoint (the service is still running)")
    ] = False,
    cases: Annotated[
        bool, typer.Option(help="also compare the trail with the case store (decisions, recorded events, imports)")
    ] = False,
) -> None:
    """Verify the audit trail without the service; with a checkpoint, against its signed heads.

    Exits 0 if intact, 1 naming the first forged record (or a difference with the case store), 2 if the
    checkpoint or the key does not hold.
    """
    from serving.audit import CheckpointError, load_public_key, read_checkpoints, verify_against, verify_trail

    settings = get_settings()
    url = url or settings.resolved_audit_url()
    if (checkpoint is None) != (public_key is None):
        _say("cannot verify", "red", ": --checkpoint and --public-key go together")
        raise typer.Exit(2)
    try:
        if checkpoint is not None and public_key is not None:
            checkpoints = read_checkpoints(checkpoint)
            key = load_public_key(public_key)
            result = verify_against(url, checkpoints, key, allow_newer=allow_newer)
            against = (
                f" against {len(checkpoints)} signed checkpoint(s), the latest of {checkpoints[-1].signed_at}, "
                f"with public key {result.key_id}"
            )
        else:
            result, against = verify_trail(url, allow_newer=True), " (chain only: no checkpoint or key given)"
    except (CheckpointError, ValueError, OSError) as exc:
        _say("cannot verify", "red", f": {exc}")
        raise typer.Exit(2) from None
    if not result.ok:
        records = f"{result.checked:,} record{'' if result.checked == 1 else 's'}"
        _say(
            "broken", "bold red", f" at {result.first_broken}: {result.problem}\n({records} intact before it){against}"
        )
        raise typer.Exit(1)
    _say("intact", "bold green", f": {result.checked:,} records{against}")
    newer = _newer(result)
    if newer:
        console.print(newer)
    if cases and _differences():
        raise typer.Exit(1)


def _newer(result: VerifyResult) -> str:
    counts = {c: n for c, n in result.newer.items() if n}
    if not counts:
        return ""
    each = ", ".join(f"{c} {n:,}" for c, n in sorted(counts.items()))
    return f"{sum(counts.values()):,} record(s) after the latest checkpoint ({each}), each signed by the signer"


def _differences() -> bool:
    """Print every difference between the trail and the case store; True if there is one."""
    from serving.cases import CaseStore, reconcile
    from serving.cli._runtime import open_audit_store

    found = reconcile(CaseStore.open(get_settings()), open_audit_store(get_settings()), apply=False)
    for difference in found:
        _say("differs", "red", f": {difference.text()}")
    if not found:
        console.print("the case store agrees with the trail (decisions, recorded events, imports)")
    return bool(found)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Verify every chain against the checkpoints so far, then sign the heads verified and append the
    checkpoint to the checkpoint folder; a broken or unexplained state is refused (exit 1) and kept for
    an auditor."""
    from serving.audit import SigningRefused, checkpointer_for
    from serving.cli._runtime import open_audit_store

    settings = get_settings()
    store = open_audit_store(settings)
    try:
        signer = checkpointer_for(settings, store, name=f"riskctl@{socket.gethostname()}")
        try:
            signed = signer.sign(full=True)
        except SigningRefused as refused:
            _say("refused", "bold red", f": {refused} (kept in {signer.refusals.path})")
            raise typer.Exit(1) from None
    finally:
        store.close()
    assert signed is not None
    heads = ", ".join(f"{c} {v['length']}" for c, v in signed.chains.items())
    console.print(f"verified and signed {heads} -> {signer.log.path} (key {signed.key_id})")


@audit_app.command("resolve")
def resolve(
    note: Annotated[str, typer.Option(help="what the auditor found and did (kept with the refusals)")],
    by: Annotated[str | None, typer.Option(help="who resolves; default the user running the command")] = None,
) -> None:
    """Close the signing refusals kept so far, with the auditor's note (the service reports them until then)."""
    from serving.audit import RefusalLog

    if len(note.strip()) < 5:
        _say("refused", "red", ": --note needs at least 5 characters saying what was found")
        raise typer.Exit(2)
    log = RefusalLog(get_settings().resolved_checkpoint_dir())
    count = log.resolve(by=by or getpass.getuser(), note=note.strip())
    console.print(f"{count} refusal(s) resolved ({log.path})")


@audit_app.command("signer")
def signer(
    socket_path: Annotated[Path, typer.Option("--socket", help="Unix socket to listen on")],
    key: Annotated[Path, typer.Option(help="Ed25519 private key (PEM, mode 0600; created if missing)")],
    checkpoint_dir: Annotated[
        Path, typer.Option(help="folder of the signer's own checkpoint stream (out of the service's reach)")
    ],
    mode: Annotated[str, typer.Option(help="socket file mode (octal): the service's group must write it")] = "660",
) -> None:
    """Run the separate signer: it holds the signing key, signs each record the service writes and each
    checkpoint of heads it signed itself. Run it as another user than the service (docs/operations.md)."""
    from serving.audit import SignerError, SignerService, public_path, serve_signer

    service = SignerService(key, checkpoint_dir)
    console.print(
        f"signer: key {service.signer.key_id} (public key {public_path(key)}), socket {socket_path}, "
        f"checkpoints {service.log.path}"
    )
    try:
        serve_signer(service, socket_path, mode=int(mode, 8))
    except SignerError as exc:
        _say("cannot start", "red", f": {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("signer stopped")


@audit_app.command("encryption-key")
def encryption_key(
    out: Annotated[Path, typer.Option(help="where to write the new key (mode 0600; refused if it exists)")],
) -> None:
    """Make a key that encrypts the stored request, answer and explanation at rest
    (set ``RISK_AUDIT_ENCRYPTION_KEY_FILE`` to it; keep it outside the home and the database's backups)."""
    from serving.audit import RecordCipher

    try:
        RecordCipher.create(out)
    except FileExistsError:
        _say("refused", "red", f": {out} exists (a new key would make earlier records unreadable)")
        raise typer.Exit(2) from None
    console.print(f"wrote {out} (key {RecordCipher.from_file(out).key_id})")
