"""`pmtop web`: the dashboard in a browser (SPEC §13).

    gate.py       who may open it: the holder of the instance's token, from this server's own page
    pages.py      the dashboard page and the token form
    sessions.py   one dashboard process per browser session (textual-serve's AppService, run whole)
    server.py     the aiohttp app: /health, the gated page and websocket, textual-serve's statics
    lifeline.py   imported by a session process: it dies with the server

`cli/web_main.py` is the command. Nothing here is imported on the client commands' or the
daemon's path, and the server itself never imports Textual: each session's dashboard does.
"""
