from __future__ import annotations

import sys

from servers.cli import main

sys.exit(main())
