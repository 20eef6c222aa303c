from score_bench.cli import main

main()
