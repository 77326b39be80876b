"""What the dashboard is given to work with: the query service and the what-if runner.

The app factory receives one ``Services`` object; callbacks reach the outside world only through
it. The what-if request, result and runner protocol are ``dashboard.whatif_view``; the runner
over the simulation engine is ``dashboard.whatif_engine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard.queries import QueryService
from dashboard.scenarios import WhatIfLimits
from dashboard.whatif_view import WhatIfRunner

__all__ = ["Services"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Everything the dashboard reads through: queries (cached historian reads) and the what-if runner.

    ``cache_dir`` holds the background-callback job cache (created by the app factory, not at import);
    ``limits`` caps what one what-if run may ask for (checked on the server).
    """

    queries: QueryService
    whatif: WhatIfRunner | None = None
    cache_dir: Path | None = None
    limits: WhatIfLimits = field(default_factory=WhatIfLimits)
    extra: dict[str, Any] = field(default_factory=dict)
