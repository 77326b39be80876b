"""Modbus TCP: register maps, block planning and decoding (pure), the only pymodbus client, the poller."""

__all__: list[str] = []
