"""``python -m training.real benchmark real ...``: the real-data benchmark without the root application."""

from training.real._cli import standalone_app

if __name__ == "__main__":
    standalone_app()()
