"""Configuration values that become mail headers are one line: `config check` refuses a CR or
LF in a recipient's name, `[digest] from` or `list_id` (accepted before, they made `digest
preview` and every send fail for everyone, and could inject headers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config

HEADER = "holds a line break or control character; it goes into a mail header"


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ('[digest]\nfrom = "Omvärld <omvarld@katrineholm.se>\\r\\nBcc: alla@example.se"\n',
         "5: digest.from", "'Omvärld <omvarld@katrineholm.se>\\r\\nBcc: alla@example.se'"),
        ('[digest]\nlist_id = "omvarld.katrineholm.se\\n"\n',
         "5: digest.list_id", "'omvarld.katrineholm.se\\n'"),
        ('[[recipients]]\nemail = "anna@katrineholm.se"\nname = "Anna\\nBcc: x@example.se"\n',
         "6: recipients[1].name", "'Anna\\nBcc: x@example.se'"),
    ],
)  # fmt: skip
def test_config_check_refuses_a_line_break_in_a_mail_header_value(
    tmp_path: Path, body: str, key: str, value: str
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}", body)

    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "config", "check"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 2
    # key is "line: key.path", the line counted in the whole file (write_config adds three).
    assert done.stderr == f"{config}:{key}: {value} {HEADER}\n"
    assert done.stdout == ""
