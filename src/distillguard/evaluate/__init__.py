"""evaluate stage: measuring detectors against ground truth, and the baselines they must beat."""

# False-positive budget on legitimate accounts for the recall-at-FPR operating point (0.1%).
DEFAULT_FPR_BUDGET = 0.001
