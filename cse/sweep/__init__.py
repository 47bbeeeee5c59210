"""`cse sweep`: one recipe trained once per seed, and its results over seeds (mean and sample standard deviation)."""
