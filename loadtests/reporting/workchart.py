"""``python -m loadtests.reporting.workchart``: where handler CPU stalls a server (the command lives in
``loadtests.commands.workchart``; this path is kept for scripts)."""

import sys

from loadtests.commands.workchart import main
from loadtests.errors import run_main

if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
