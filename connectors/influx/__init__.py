"""InfluxDB, the one package that talks to it: the historian at scale (``historian``) and the feed source (``feed``).

Under them: ``client`` (the wire, the only importer of influxdb-client and of aiohttp for 1.x, and
the one mapping of their failures to reasons), ``query`` (Flux and InfluxQL text), ``lineproto``
(what is written) and ``csv`` (the one annotated-CSV parser, cell and time converters).
"""

__all__ = []
