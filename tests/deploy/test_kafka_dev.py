"""deploy/kafka-dev/kafka.sh, the local broker every test and the demo start: its parts that
can be run alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka-dev" / "kafka.sh"

# uuid4 that first gives the bytes whose base64url starts with "-" (0xf8: 111110.., 62), then
# random ones: the 1-in-64 draw that made `kafka-storage format -t -...` read the id as an option
# (a sitecustomize module, which Python runs at start, puts it in place)
FIRST_DRAW_STARTS_WITH_A_DASH = """
import os
import uuid

draws = [bytes([0xF8]) + bytes(15)]
uuid.uuid4 = lambda: uuid.UUID(bytes=draws.pop() if draws else os.urandom(16))
"""


def test_a_cluster_id_never_starts_with_a_dash(tmp_path: Path) -> None:
    """A CI run failed at `make kafka`: "argument --cluster-id/-t: expected one argument"."""
    (tmp_path / "sitecustomize.py").write_text(FIRST_DRAW_STARTS_WITH_A_DASH)
    function = subprocess.run(
        ["sed", "-n", "/^cluster_id() {/,/^}/p", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert function.startswith("cluster_id() {")
    drawn = subprocess.run(
        ["bash", "-c", f"{function}\ncluster_id"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    ).stdout.strip()
    assert len(drawn) == 22
    assert not drawn.startswith("-")
