"""The `pmtop COMMAND`s, one module per family; each command is one `@command` function (`cli/registry.py`)
with its arguments beside it. Importing this package registers them all.
"""

# In the order `pmtop --help` lists them: what a user reaches for first.
from . import processes, daemon, files, web, watcher  # noqa: I001, F401  (each registers its commands on import)
