"""What to measure: explicit levels against a preset's, stored settings, and the checks on both."""

from __future__ import annotations

import json

import pytest

from loadtests.driver.options import validate
from loadtests.driver.schedule import plan_points
from loadtests.errors import UserError
from loadtests.presets import PRESETS, SweepSettings

FULL = PRESETS["full"]


def test_a_scenario_a_variant_cannot_serve_is_skipped_and_named() -> None:
    from loadtests.driver.options import validate
    from loadtests.driver.rundir import variant_info as _variant_info
    from loadtests.errors import UserError

    settings = PRESETS["quick"].with_overrides(
        {"variants": ("flask-granian", "fastapi-granian"), "scenarios": ("analyse", "chat"), "users": (2,)}
    )
    planned = {(s.variant, s.scenario) for s in plan_points(validate(settings))}
    assert planned == {
        ("flask-granian", "analyse"),
        ("fastapi-granian", "analyse"),
        ("fastapi-granian", "chat"),
    }
    info = _variant_info(
        "flask-granian", verified=True, reason=None, log_file=None, scenarios=("analyse", "chat")
    )
    assert info.verified and info.reason is not None and info.reason.startswith("unsupported: chat (granian")
    assert (
        _variant_info(
            "fastapi-granian", verified=True, reason=None, log_file=None, scenarios=("chat",)
        ).reason
        is None
    )
    with pytest.raises(UserError, match="variant flask-granian cannot serve chat: granian's WSGI"):
        validate(settings.with_overrides({"scenarios": ("chat",)}))


def test_explicit_levels_replace_the_presets_per_scenario_levels_and_search() -> None:
    users = FULL.with_overrides({"users": (2,)})
    assert users.users_for("analyse") == (2,) and users.users_for("overhead") == (2,)
    assert users.capacity_scenarios == () and users.rates_for("analyse") == FULL.rates_for("analyse")
    rates = FULL.with_overrides({"rates": (1.0,)})
    assert rates.rates_for("analyse") == (1.0,) and rates.users_for("analyse") == FULL.users_for("analyse")
    assert rates.capacity_scenarios == ("analyse",)
    both = FULL.with_overrides({"users": (2,), "capacity_scenarios": ("analyse",)})
    assert both.capacity_scenarios == ("analyse",)


def test_settings_survive_the_results_file() -> None:
    """--resume reads them back from results.json: the per-scenario maps must come back as they were."""
    again = SweepSettings.from_dict(json.loads(json.dumps(FULL.to_dict())))
    assert again == FULL
    assert plan_points(validate(again)) == plan_points(validate(FULL))


@pytest.mark.parametrize(
    ("capacity", "needle"),
    [(("overhead",), "overhead has no upstream wait"), (("bogus",), "unknown scenario 'bogus'")],
)
def test_a_bad_capacity_scenario_is_refused(capacity: tuple[str, ...], needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        validate(FULL.with_overrides({"capacity_scenarios": capacity}))
