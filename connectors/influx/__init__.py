"""InfluxDB, the one package that talks to it: the historian at scale (``historian``) and the feed source (``feed``)."""

__all__: list[str] = []
