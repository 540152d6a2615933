"""``riskctl audit verify`` and ``riskctl audit checkpoint`` (serving.audit; heavy imports in the commands)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from features.cli import console
from serving.settings import get_settings

audit_app = typer.Typer(help="The audit trail: verify it against signed checkpoints, sign one.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="checkpoint file (JSON Lines from the service's checkpoint "
            "folder, or one checkpoint copied from /verify)"
        ),
    ] = None,
    public_key: Annotated[Path | None, typer.Option(help="Ed25519 public key (PEM) of the signer")] = None,
    url: Annotated[str | None, typer.Option(help="audit store URL; default RISK_AUDIT_URL or <home>/audit.db")] = None,
    allow_newer: Annotated[
        bool, typer.Option(help="accept records after the latest checkpoint (the service is still running)")
    ] = False,
) -> None:
    """Verify the audit trail without the service; with a checkpoint, against its signed heads.

    Exits 0 if intact, 1 naming the first record that breaks it, 2 if the checkpoint does not hold.
    """
    from serving.audit import CheckpointError, load_public_key, read_checkpoints, verify_against, verify_trail

    settings = get_settings()
    url = url or settings.resolved_audit_url()
    if (checkpoint is None) != (public_key is None):
        console.print("[red]--checkpoint and --public-key go together[/red]")
        raise typer.Exit(2)
    try:
        if checkpoint is not None and public_key is not None:
            checkpoints = read_checkpoints(checkpoint)
            result = verify_against(url, checkpoints, load_public_key(public_key), allow_newer=allow_newer)
            against = f" against {len(checkpoints)} signed checkpoint(s), the latest of {checkpoints[-1].signed_at}"
        else:
            result, against = verify_trail(url, allow_newer=True), " (chain only: no checkpoint given)"
    except (CheckpointError, ValueError, OSError) as exc:
        console.print(f"[red]cannot verify:[/red] {exc}")
        raise typer.Exit(2) from None
    if result.ok:
        console.print(f"[green]intact[/green]: {result.checked:,} records{against}")
        return
    console.print(
        f"[red]broken[/red] at {result.first_broken}: {result.problem}  ({result.checked:,} records "
        f"checked before it){against}"
    )
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign the chain heads now and append the checkpoint to the checkpoint folder."""
    from serving.audit import Checkpointer, CheckpointLog, load_or_create_key, public_path, read_head

    settings = get_settings()
    key_file = settings.resolved_signing_key_file()
    key = load_or_create_key(key_file)
    url = settings.resolved_audit_url()
    log = CheckpointLog(settings.resolved_checkpoint_dir())
    signed = Checkpointer(
        lambda: read_head(url), key, log, interval_s=0, signer=f"riskctl@{socket.gethostname()}"
    ).sign()
    heads = ", ".join(f"{c} {v['length']}" for c, v in signed.chains.items())
    console.print(f"signed {heads} -> {log.path} (public key {public_path(key_file)})")
