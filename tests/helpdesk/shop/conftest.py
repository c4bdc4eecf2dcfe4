"""Shop tests reuse the care tests' settings, fake clock and app: delivering an order starts its care."""

from __future__ import annotations

from tests.helpdesk.care.conftest import care_client, care_settings, clock  # noqa: F401 (fixtures)
