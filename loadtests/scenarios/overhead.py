"""``overhead``: the ``analyse`` request against the mock's ``instant`` profile (the sweep starts the mock
with it), so latency and server CPU per request are what each framework costs with no waiting at all.

Standalone: start the mock with ``--profile instant`` and run this file like ``analyse.py``.
"""

from __future__ import annotations

from loadtests.scenarios.analyse import AnalyseUser


class OverheadUser(AnalyseUser):
    scenario = "overhead"


# Locust picks up every User class in this module's namespace; the imported one must not run too.
del AnalyseUser
