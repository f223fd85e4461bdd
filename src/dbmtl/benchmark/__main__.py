"""`python -m dbmtl.benchmark _forward|_profile|_predict|_save|_s4pred SPEC_JSON OUT_JSON`: the benchmark's
child processes (dbmtl.benchmark.workers)."""
import sys

from .workers import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
