"""System tests reuse the dashboard's headless-Chromium fixture."""

from tests.dashboard.test_browser import browser  # noqa: F401 - re-exported fixture
