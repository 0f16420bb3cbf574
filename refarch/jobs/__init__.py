"""Compositions on top of the layers: bootstrap, AMIs, the demo, a run with refarch's policies."""
