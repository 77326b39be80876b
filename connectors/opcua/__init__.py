"""OPC UA: the client (the only asyncua import of the collector) and the source the collector runs."""

__all__: list[str] = []
