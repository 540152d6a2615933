"""``python -m serving.cli``: the same as ``riskctl``."""

from serving.cli import main

main()
