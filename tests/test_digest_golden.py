"""Golden digests built from a fixed database: build and render together, on both databases.

The fixed database is the one `tests/digestdata.py` fills (week 2026-W48 and the four
weeks before it). Regenerate with `--update-goldens` after an intended change, and read the diff.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.engine import Engine

from digest.render import render_digest
from monitor.config import Config
from tests.conftest import assert_golden
from tests.digestdata import READER, build


@pytest.mark.parametrize("language", ["sv", "en"])
def test_digest_of_the_fixed_database_matches_its_golden_files(
    engine: Engine,
    digest_config: Config,
    language: str,
    request: pytest.FixtureRequest,
) -> None:
    recipient = dataclasses.replace(READER, language=language)
    rendered = render_digest(build(engine, digest_config, recipient), digest_config.digest)
    assert_golden(request, f"digest_db_{language}.html", rendered.html)
    assert_golden(request, f"digest_db_{language}.txt", rendered.text)
    assert_golden(request, f"digest_db_{language}.subject", rendered.subject + "\n")
