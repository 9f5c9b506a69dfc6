"""`python -m omzconv`: the same as the `omzconv` command."""

from omzconv.cli import main

main(prog_name="omzconv")
