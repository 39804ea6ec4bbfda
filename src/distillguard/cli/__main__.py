"""`python -m distillguard.cli`: the same entry point as the `distillguard` command."""

from distillguard.cli import main

main()
