"""Placeholder: replaced by the evaluation implementation."""

import typer

baseline_app = typer.Typer(help="Baseline detectors.")


def evaluate_command() -> None:
    """Evaluate predictions against ground truth."""
    raise NotImplementedError
