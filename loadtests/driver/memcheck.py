"""``python -m loadtests.driver.memcheck``: the memory benchmark (the command lives in
``loadtests.commands.memcheck``; this path is kept for scripts)."""

import sys

from loadtests.commands.memcheck import main
from loadtests.errors import run_main

if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
