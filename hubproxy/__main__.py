"""`python -m hubproxy`: the same as the `hubproxy` command."""

import sys

from hubproxy.cli.main import main

sys.exit(main())
