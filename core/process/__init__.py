"""One process's life: the state machine and its runner task, spawning a run and adopting one, the
restart policy, dependency rules, and the run's log files.

May import: the model, events, errors, files, `system` and `checks`. Never config, the supervisor,
daemon or api: a runner is handed its spec and its bus.
"""
