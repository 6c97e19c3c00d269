"""The benchmark: hubproxy against a bare aiohttp pass-through and the upstream itself.

Run it with `make bench` (or `python -m bench --help`); bench/README.md explains the layout.
"""
