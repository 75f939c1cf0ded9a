"""Scenario data for demos and tests: the bundled Syria scenario lives in `sim.syria`."""
