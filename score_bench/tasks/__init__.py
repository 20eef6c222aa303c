"""Task plugins, one module each, registered in the `score_bench.tasks` entry-point group."""
