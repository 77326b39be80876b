"""A secured OPC UA endpoint: SignAndEncrypt with certificates, a user whose password comes from the environment.

The server (the emulator's, on 127.0.0.1 and a free port) offers only Basic256Sha256 SignAndEncrypt
and user-name logins; the certificates are made for the test. A wrong password is a reason on the
readings and in the log, and the password itself appears nowhere.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from asyncua.crypto import cert_gen
from cryptography.x509.oid import ExtendedKeyUsageOID

from connectors.config import PlantConfig
from connectors.emulator.opcua_endpoint import OpcUaEndpoint
from connectors.opcua.source import OpcUaReader
from tests.connectors.opcua.conftest import VARIABLES, run
from twin.readings import Quality, Reading

pytestmark = pytest.mark.server

PASSWORD = "correct horse battery staple"


async def _pair(folder: Path, name: str, uri: str, use: object) -> tuple[Path, Path]:
    key, cert = folder / f"{name}-key.pem", folder / f"{name}-cert.der"
    await cert_gen.setup_self_signed_certificate(key, cert, uri, "localhost", [use], {"organizationName": "twin tests"})
    return cert, key


def test_sign_and_encrypt_with_a_user_and_a_password_from_the_environment(
        mixed_cfg: PlantConfig, ua_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TWIN_TEST_OPCUA_PASSWORD", PASSWORD)
    monkeypatch.setenv("TWIN_TEST_OPCUA_WRONG", "not the password")

    async def go() -> tuple[list[Reading], list[Reading]]:
        server_cert, server_key = await _pair(tmp_path, "server", "urn:freeopcua:python:server",
                                              ExtendedKeyUsageOID.SERVER_AUTH)
        client_cert, client_key = await _pair(tmp_path, "client", "urn:freeopcua:client",
                                              ExtendedKeyUsageOID.CLIENT_AUTH)
        ep = OpcUaEndpoint(ua_port, VARIABLES, certificate=str(server_cert), private_key=str(server_key),
                           users={"twin": PASSWORD})
        await ep.start()
        secured = replace(mixed_cfg.opcua[0], security="SignAndEncrypt", certificate=client_cert,
                          private_key=client_key, user="twin", password_env="TWIN_TEST_OPCUA_PASSWORD", poll=True)
        good = OpcUaReader(secured)
        wrong = OpcUaReader(replace(secured, password_env="TWIN_TEST_OPCUA_WRONG"))
        try:
            return await good.poll_once(), await wrong.poll_once()
        finally:
            await good.close()
            await wrong.close()
            await ep.stop()

    with caplog.at_level(logging.DEBUG):
        ok, refused = run(go, timeout_s=60.0)
    assert [(r.signal, r.value, r.quality) for r in ok] == [
        ("status", 1, Quality.GOOD), ("good_count", 0, Quality.GOOD), ("spindle_temp_c", pytest.approx(21.5),
                                                                        Quality.GOOD)]
    assert {r.quality for r in refused} == {Quality.STALE} and all(r.reason for r in refused)
    assert any("its nodes are STALE" in r.getMessage() for r in caplog.records)
    leaks = sorted({r.name for r in caplog.records
                    if PASSWORD in r.getMessage() or "not the password" in r.getMessage()})
    assert not leaks, leaks


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
def test_the_emulator_serves_a_secured_source_with_a_certificate_of_its_own(
        mixed_cfg: PlantConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """``twin emulate`` for a source with ``security = Sign*``: a self-signed server certificate made at
    start, the source's mode offered, its user let in with the password the source reads."""
    from connectors.emulator.opcua_server import OpcUaServers

    monkeypatch.setenv("TWIN_TEST_OPCUA_PASSWORD", PASSWORD)

    async def go() -> tuple[list[Reading], list[Reading], bool]:
        client_cert, client_key = await _pair(tmp_path, "client", "urn:freeopcua:client",
                                              ExtendedKeyUsageOID.CLIENT_AUTH)
        secured = replace(mixed_cfg.opcua[0], security=mode, certificate=client_cert, private_key=client_key,
                          user="twin", password_env="TWIN_TEST_OPCUA_PASSWORD", poll=True)
        ua = OpcUaServers([secured], {("pod-a", "CNC1", "status"): 2})
        await ua.start()
        reader, unsecured = OpcUaReader(secured), OpcUaReader(replace(secured, security="None"))
        try:
            return await reader.poll_once(), await unsecured.poll_once(), ua.endpoint(secured.id).secured
        finally:
            await reader.close()
            await unsecured.close()
            await ua.stop()

    ok, refused, had_certificate = run(go, timeout_s=60.0)
    assert had_certificate
    assert {r.quality for r in ok} == {Quality.GOOD} and (ok[0].signal, ok[0].value) == ("status", 2)
    # only the secured mode is offered: a client asking for none gets no session
    assert {r.quality for r in refused} == {Quality.STALE} and all(r.reason for r in refused)
