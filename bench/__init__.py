"""A reproducible benchmark of the cleanup sweep against its floor, its peer and naive baselines."""
