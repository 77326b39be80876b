"""``python -m connectors.cli``: the same as the ``twin`` command."""

import sys

from connectors.cli import main

sys.exit(main())
