"""Shared pytest configuration for the Tapedeck test suite.

Hypothesis profiles: "ci" is loaded when the CI environment variable is set, "dev" otherwise.
Neither has a deadline, since numba compiles on first call and would trip any per-example limit.
"""

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=50, derandomize=False, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
