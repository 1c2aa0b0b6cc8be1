"""``runway traffic replay``: what it refuses before sending anything.

The replay itself, on a real fleet: tests/fleet/test_served_traffic.py.
"""

from __future__ import annotations

import pytest

from pipeline_components.cli import main
from pipeline_components.settings import Settings
from tests.fleet.fixtures import prepare_december_sample


@pytest.fixture
def december(isolated_settings: Settings) -> Settings:
    prepare_december_sample(isolated_settings)
    return isolated_settings


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param((), "no serving fleet is running; start one with `runway fleet up`", id="no-fleet"),
        pytest.param(("--month", "13"), "span 13 of flights is not prepared", id="unknown-month"),
        pytest.param(("--rate", "0"), "--rate must be positive, not 0.0", id="rate"),
        pytest.param(("--count", "-1"), "--count must be positive, not -1", id="count"),
    ],
)
def test_replay_refuses_with_what_to_do(
    december: Settings, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert main(["traffic", "replay", "flights", "--month", "12", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    if "13" in argv:
        assert "Prepared spans: [12]" in err


def test_replay_help_says_how_it_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["traffic", "replay", "--help"])
    text = capsys.readouterr().out
    for phrase in ("--rate", "--count", "--duration", "--protocol", "--json", "open loop"):
        assert phrase in text


def test_a_count_below_the_spans_rows_is_spread_over_the_whole_span_in_order() -> None:
    from pipeline_components.cli.commands.traffic import spread

    hours = list(range(720))  # a month of rows in time order
    picked = spread(hours, 30)
    assert len(picked) == 30 and picked == sorted(picked)
    assert picked[0] == 0 and picked[-1] >= 696  # the whole month, not its first day
    assert spread(hours, None) == hours and spread(hours, 5000) == hours
