"""``python -m app``: the same as the ``twin`` command."""

import sys

from app import main

__all__: list[str] = []

sys.exit(main())
