"""Benchmarks: each stage and the whole pipeline against ceilings measured in the same run (``smartfarm bench``)."""
