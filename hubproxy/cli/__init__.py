"""The command line: `hubproxy COMMAND`. Exports main()."""

from hubproxy.cli.main import main

__all__ = ["main"]
