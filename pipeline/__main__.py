"""`python -m pipeline …` is `compress …`, for environments whose scripts folder is not on PATH."""

from pipeline.cli import main

main(prog_name="compress")
