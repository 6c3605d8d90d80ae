"""The supervisor as a service: the instance lock, PID file, `daemon.json` and token, the registry a
successor adopts from, the daemon's own log, and the start-up and shutdown order around the API.

May import: everything below it (the supervisor, config, process, system, the leaf modules), and the
api server, lazily (its import is the slowest part of a cold start).
"""
