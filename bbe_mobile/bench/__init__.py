"""``bbe-mobile bench``: speed, size and accuracy of every exported format and of the grouper, against the
paper's target (benchmarks/README.md); ``run.run_bench`` is its entry point."""
