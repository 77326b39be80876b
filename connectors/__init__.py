"""The adapters between the twin and the world: Modbus, InfluxDB, the SQLite store, feeds, emulator, configuration."""

__all__: list[str] = []
