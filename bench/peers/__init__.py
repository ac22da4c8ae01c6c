"""The peers the benchmark compares kafka-sagas with: Temporal and faust-streaming.

Each peer runs the same 4-step order saga and reports completed sagas/s at saturation;
their tools are installed outside the repository by :mod:`bench.peers.install`.
"""
