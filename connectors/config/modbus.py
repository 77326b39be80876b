"""Placeholder: the Modbus register-map schema (filled in by the Modbus work, issue 3)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ModbusDeviceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterMapModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
