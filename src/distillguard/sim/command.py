"""Placeholder: replaced by the simulator implementation."""


def simulate_command() -> None:
    """Simulate API traffic with ground truth."""
    raise NotImplementedError
