"""``hlx bench``: HLX against torch/cuBLAS, CuPy and NumPy in the same process (docs/BENCHMARKS.md).

``timing`` (warm-up, repeats, statistics), ``peers`` (the peers and their CUDA-event clocks), ``nvml``
(driver version, energy counter), ``harness`` (what the suites of one run share), ``suites`` (one module
per suite), ``report`` (rows, ratios, CSV), ``plots`` (PNG, optional matplotlib), ``progress``, and
``command`` (the subcommand). The scripts in benchmarks/ use the same timing and peers.
"""
