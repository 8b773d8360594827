"""``python -m mock_llm``: see mock_llm.cli."""

from __future__ import annotations

import sys

from mock_llm.cli import main

if __name__ == "__main__":
    sys.exit(main())
