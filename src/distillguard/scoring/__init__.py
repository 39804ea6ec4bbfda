"""scoring stage."""

# The operating point's default share of all legitimate calibration accounts that may be flagged.
DEFAULT_FPR_BUDGET = 0.001

# The operating point's default limit per calibration segment (docs/detection.md): half
# the 0.5% per hard-case target, since a segment of a few hundred calibration accounts is a noisy
# estimate of the same kind of customer elsewhere. Both defaults live here, not in `model`, so
# the CLI can show them without importing numpy.
DEFAULT_SEGMENT_FPR_BUDGET = 0.0025
