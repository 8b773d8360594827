"""``python -m loadtests.driver.mockbench``: the mock's own benchmark (the command lives in
``loadtests.commands.mockbench``; this path is kept for scripts)."""

import sys

from loadtests.commands.mockbench import main
from loadtests.errors import run_main

if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
