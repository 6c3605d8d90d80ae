"""pmtop's HTTP API, in three parts that share one protocol (`protocol.py`: routes, errors, events):

- `server.make_app`: the API app the daemon serves, on `http11.Server` (pmtop's small HTTP/1.1 server
  on h11; imported lazily: it is the slowest import of a cold start);
- `client.HttpController`: the `Controller` over httpx, for the dashboard attached to a daemon;
- `sync_client.Client`: a small synchronous client on a plain socket (`wire.py`), for the client
  commands and the daemon's own start-up checks, which must not pay for httpx or even `http.client`.

May import: the leaf modules, `config` (a registration is a process table), and the controller.
Nothing here imports the supervisor, the daemon or the process layer.
"""
