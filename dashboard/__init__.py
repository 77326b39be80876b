"""The web dashboard (Plotly Dash Pages): the fleet, sites, machines, alarms, trust and what-if, read from history."""

__all__: list[str] = []
