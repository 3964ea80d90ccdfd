"""The evaluation lab: purged walk-forward, costs, targets, calibration, policy, baselines and statistics."""
