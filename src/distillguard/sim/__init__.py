"""Traffic simulator with ground truth: legitimate actors, hard cases and distillation campaigns."""

from distillguard.sim.generator import SCENARIOS, Scenario, SimSummary, simulate

__all__ = ["SCENARIOS", "Scenario", "SimSummary", "simulate"]
