"""Talking to the operating system: spawning process groups and killing them whole, noticing exits
through pidfds, reading what processes use (`/proc`, netlink), watching foreign PIDs.

Knows processes, not pmtop's model of them. May import: errors and the leaf modules only.
"""
