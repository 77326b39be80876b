"""``python -m app``: the same as the ``twin`` command."""

import sys

from app import main

sys.exit(main())
