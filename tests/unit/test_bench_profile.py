"""The bench's profile summary (bench/common.py `top_costs`): self time per function, line
numbers folded together, shares of the busy samples."""

from pathlib import Path

from bench.common import machine_shares, machine_ticks, top_costs


def test_top_costs_ranks_functions_by_their_own_samples(tmp_path: Path) -> None:
    folded = tmp_path / "profile.folded"
    folded.write_text(
        "main (a.py:1);decode (envelope.py:10) 30\n"
        "main (a.py:1);decode (envelope.py:12) 20\n"  # another line of the same function
        "main (a.py:1);claim (inbox.py:5);execute (asyncpg.py:7) 40\n"
        "main (a.py:2) 10\n"
    )
    assert top_costs(folded, 2) == [("decode (envelope.py)", 50.0), ("execute (asyncpg.py)", 40.0)]
    assert top_costs(folded)[-1] == ("main (a.py)", 10.0)


def test_machine_shares_split_busy_idle_and_stolen_ticks(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 800 40 0 10 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    before = machine_ticks(str(stat))
    assert before == (1000, 160, 0)
    stat.write_text("cpu  400 0 150 900 40 0 10 100 0 0\n")
    assert machine_shares(before, machine_ticks(str(stat))) == {"busy_pct": 66.7, "stolen_pct": 16.7}
