"""Computation on scenarios and samples, beside the simulation: statistics (confidence
intervals, paired ratios, MSER-5) and the analytic queueing-network estimate of every
path."""
