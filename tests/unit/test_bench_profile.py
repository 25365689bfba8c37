"""The bench's profile summary (bench/common.py `top_costs`): self time per function, line
numbers folded together, shares of the busy samples."""

from pathlib import Path

from bench.common import top_costs


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
