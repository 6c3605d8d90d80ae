"""Health checks: the probes that answer "is this process healthy now?", and the monitor that
schedules them for one run (startup check, interval, consecutive failures).

May import: the model, values, errors and `system` (an exec probe is a process group of its own).
Never config, process, daemon or api.
"""
