"""``riskctl``: one command with a sub-command for every step (data, features, train, evaluate, serve...)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from features.cli import build_frames, console, data_app, features_app, summary_table, write_synthetic
from features.settings import get_settings
from features.synthetic import CohortConfig
from features.vocab import Stage
from serving import commands as serving_commands
from training import cli as training_cli
from training import real_cli

app = typer.Typer(help="Re-offending risk assessment: data, features, models, service.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
training_cli.register(app)
real_cli.register(app)
serving_commands.register(app)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="working folder of the demo")] = Path("var/demo"),
    persons: Annotated[int, typer.Option(min=100, help="synthetic cohort size")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """The main job on embedded defaults: cohort, features, train and promote, then score one person via the service."""
    from training.cli import train

    data = out / "data"
    tables = write_synthetic(data, CohortConfig(persons=persons, seed=seed))
    frames = build_frames(tables, list(Stage), out / "features")
    console.print(summary_table(frames))
    train(data=data, stage="all", seed=seed, temporal=None, budget=None, promote_after=True)
    serving_commands.demo_service(get_settings(), tables)


if __name__ == "__main__":
    app()
