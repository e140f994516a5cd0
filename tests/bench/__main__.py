"""`python -m tests.bench`: the CPU benchmark (tests/bench/cpu.py)."""
from tests.bench.cpu import main

main()
