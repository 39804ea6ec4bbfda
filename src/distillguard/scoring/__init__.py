"""scoring stage."""

# The operating point's default limit per calibration segment (README "Detection quality"): half
# the 0.5% per hard-case target, since a segment of a few hundred calibration accounts is a noisy
# estimate of the same kind of customer elsewhere. Here, not in `model`, so the CLI can show it
# without importing numpy.
DEFAULT_SEGMENT_FPR_BUDGET = 0.0025
