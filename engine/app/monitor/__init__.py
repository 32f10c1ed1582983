"""``tape monitor``: live per-session tables of the runs on a Kafka cluster (docs/monitor.md).

:mod:`figures` is pure (the folds); :mod:`app` is the faust-streaming adapter, imported only
by the command that runs it."""
