"""`bench.alternate` compares two malls' journey CPU in alternating rounds: each side is warmed
first and its warm-up left out, the rounds alternate in ABBA order (so a slow stretch of the
machine lands on both sides), and the ratio is of the summed CPU, per process and per phase.
Checked on stand-in sides (no mall): the live run is what ``bench.alternate --baseline`` does."""

from __future__ import annotations

from bench import alternate, journey_cost


class StandIn(alternate.Side):
    """A side whose journeys cost what it is told, recording when it ran."""

    def __init__(self, name: str, costs: list[float], log: list[str]) -> None:
        self.name, self.costs, self.log = name, costs, log
        self.spent, self.phases, self.journeys, self.rounds = {}, {}, 0, []

    def run(self, journeys: int) -> float:
        ms = self.costs.pop(0)
        self.log.append(self.name)
        self.spent["queue"] = self.spent.get("queue", 0.0) + ms * journeys
        for phase in journey_cost.PHASES:
            share = ms / len(journey_cost.PHASES)
            self.phases[phase] = self.phases.get(phase, 0.0) + share * journeys
        self.journeys += journeys
        self.rounds.append(ms)
        return ms


def test_rounds_alternate_abba_after_an_uncounted_warm_up():
    order: list[str] = []
    ours = StandIn("ours", [999.0, 40.0, 60.0, 50.0, 50.0], order)
    theirs = StandIn("theirs", [999.0, 100.0, 100.0, 80.0, 120.0], order)

    result = alternate.compare(ours, [theirs], rounds=4, journeys=10)

    warm_up, rounds = order[:2], [order[i : i + 2] for i in range(2, len(order), 2)]
    assert warm_up == ["ours", "theirs"]
    assert rounds == [["ours", "theirs"], ["theirs", "ours"]] * 2
    assert result["current"]["rounds"] == [40.0, 60.0, 50.0, 50.0]  # the warm-up left out
    baseline = result["baselines"]["theirs"]
    assert result["current"]["cpu_ms"] == 50.0 and baseline["cpu_ms"] == 100.0
    assert baseline["ratio"] == 0.5
    assert baseline["round_ratios"] == [0.4, 0.6, 0.625, 0.417]
    assert result["current"]["by_phase"]["take"] == 10.0
    assert "= 0.5" in alternate.report(result)


def test_two_baselines_alternate_in_one_run_each_compared():
    order: list[str] = []
    ours = StandIn("ours", [1.0, 50.0, 50.0], order)
    parent = StandIn("parent", [1.0, 55.0, 45.0], order)
    older = StandIn("older", [1.0, 100.0, 100.0], order)

    result = alternate.compare(ours, [parent, older], rounds=2, journeys=10)

    assert order[3:] == ["ours", "parent", "older", "older", "parent", "ours"]
    assert result["baselines"]["parent"]["ratio"] == 1.0
    assert result["baselines"]["older"]["ratio"] == 0.5
