"""The README and every page of docs/ are executed: each command and code sample runs, its output is checked.

Conventions (the same in every document):

* ```` ```console ```` blocks: a line starting with ``$ `` is a command (a trailing `` \\`` continues it on
  the next line); the lines after it, up to the next command, are its expected output (stdout and
  stderr together, as a terminal shows them; a progress bar's ``\\r`` keeps only what remains
  visible). A line ``...`` matches any number of lines, and ``...`` inside a line matches any text.
  A command ending in `` &`` starts in the background: the block waits until it has printed
  something and the TCP ports it names (``--port N`` or ``127.0.0.1:N`` in its output) accept
  connections; at the end of the block it is stopped with SIGINT and its output is checked against
  the lines that follow it. A command that exits non-zero must show real expected output (the
  documented failure), not only ``...``.
* ```` ```python ```` blocks are executed (and must exit 0); a directly following ```` ```output ````
  block is their expected stdout.
* A block whose info string carries ``title="PATH"`` (e.g. ```` ```toml title="plant.toml" ````) is
  written to PATH before the blocks after it run.
* ```` ```sh ```` blocks are shown, never run (docker, installing); plain ```` ``` ```` fences are not
  allowed, so no example escapes this test by accident.

Each document runs top to bottom in its own sandbox: a temporary folder holding copies of
``examples/`` and ``docker/``, with a ``twin`` command on PATH that runs ``python -m app``
from this checkout, and a temporary HOME. Modbus ports 150xx and the dashboard port 8050 are
rewritten to free ports everywhere (files, commands and expected output), so the examples never
collide with another test, and the checkout itself is never written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import BaseModel

from connectors.config import feeds as feeds_schema
from connectors.config import influx_feed as influx_schema
from connectors.config import modbus as modbus_schema
from connectors.config import reports as reports_schema
from connectors.config import schema
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXECUTED = {"console", "python"}
SHOWN = {"sh", "toml", "text", "output", "yaml", "csv", "json"}
COMMAND_TIMEOUT_S = 90.0
READY_TIMEOUT_S = 30.0
PORT_RE = re.compile(r"\b(150\d\d|8050)\b")
FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,})(?P<info>[^`\n]*)$")
TITLE_RE = re.compile(r'title="(?P<path>[^"]+)"')


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """A fenced block of a document."""

    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks_of(doc: Path) -> list[Block]:
    """Every fenced block of ``doc``, in order."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        lang = info.split()[0] if info else ""
        t = TITLE_RE.search(info)
        out.append(Block(doc=doc, line=start + 1, lang=lang, title=t.group("path") if t else None,
                         text="\n".join(body) + ("\n" if body else "")))
    return out


# ----------------------------------------------------------------------------------------- matching
def _line_pattern(line: str) -> str:
    return "[^\n]*".join(re.escape(part) for part in line.split("..."))


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` matches ``expected`` under the ellipsis rule (trailing blanks ignored)."""
    exp = [ln.rstrip() for ln in expected.rstrip("\n").split("\n")] if expected.strip() else []
    act = "".join(ln.rstrip() + "\n" for ln in actual.rstrip().split("\n")) if actual.strip() else ""
    pattern = "".join("(?:[^\n]*\n)*?" if ln == "..." else _line_pattern(ln) + "\n" for ln in exp)
    return re.fullmatch(pattern, act) is not None


def terminal_text(raw: str) -> str:
    """What a terminal shows: per line, the text after the last carriage return."""
    return "\n".join(ln.rsplit("\r", 1)[-1] for ln in raw.replace("\r\n", "\n").split("\n"))


def test_matches_ellipsis_rule() -> None:
    assert matches("a\n...\nd\n", "a\nb\nc\nd\n")
    assert matches("a\n...\nd\n", "a\nd\n")
    assert matches("x ... z\n", "x yy z\n")
    assert not matches("a\nd\n", "a\nb\nd\n")
    assert not matches("x ... z\n", "x y\nz\n")
    assert matches("", "\n")
    assert not matches("", "something\n")
    assert terminal_text("[#..] 1/2\r[##] 2/2\ndone") == "[##] 2/2\ndone"


# ----------------------------------------------------------------------------------------- sandbox
@dataclass
class Sandbox:
    """A folder standing in for the checkout, with ports rewritten and a ``twin`` command on PATH."""

    root: Path
    env: dict[str, str]
    ports: dict[str, str] = field(default_factory=dict)

    def remap(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in self.ports:
                self.ports[m.group(1)] = str(_unused_port(set(self.ports.values())))
            return self.ports[m.group(1)]

        return PORT_RE.sub(sub, text)


def _unused_port(taken: set[str]) -> int:
    for _ in range(100):
        p = free_port()
        if str(p) not in taken:
            return p
    raise RuntimeError("no free port")


def make_sandbox(tmp: Path) -> Sandbox:
    root = tmp / "checkout"
    root.mkdir()
    shutil.copytree(ROOT / "examples", root / "examples")
    shutil.copytree(ROOT / "docker", root / "docker")
    home = tmp / "home"
    home.mkdir()
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    twin = bin_dir / "twin"
    twin.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m app "$@"\n')
    twin.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWIN_", "INFLUX", "PYTEST", "COV_"))}
    env.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT),
               PYTHONDONTWRITEBYTECODE="1", COLUMNS="80", LC_ALL="C.UTF-8", TZ="UTC")
    box = Sandbox(root=root, env=env)
    for path in sorted((root / "examples").rglob("*.toml")):
        path.write_text(box.remap(path.read_text(encoding="utf-8")), encoding="utf-8")
    return box


# ----------------------------------------------------------------------------------------- running
@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One ``$`` command of a console block and the output the document expects from it."""

    text: str
    expected: str
    line: int

    @property
    def background(self) -> bool:
        return self.text.endswith(" &")


def commands_of(block: Block) -> list[Command]:
    lines = block.text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        assert line.startswith("$ "), f"{block.where}: a console block starts with a '$ ' command (got {line!r})"
        start = i
        text = line[2:]
        while text.endswith("\\"):
            i += 1
            text = text[:-1] + lines[i].strip()
        i += 1
        out: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        cmds.append(Command(text=text.strip(), expected="\n".join(out), line=block.line + 1 + start))
    return cmds


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Background:
    """A command started with ``&``; stopped at the end of its block."""

    cmd: Command
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return terminal_text(self.log.read_text(encoding="utf-8", errors="replace"))

    def wait_ready(self, cmd_text: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        wanted = {int(p) for p in re.findall(r"--port[ =](\d+)", cmd_text)}
        while time.monotonic() < deadline:
            out = self.output()
            ports = wanted | {int(p) for p in re.findall(r"(?:127\.0\.0\.1|0\.0\.0\.0|localhost):(\d+)", out)}
            if self.proc.poll() is not None:
                pytest.fail(f"background command {cmd_text!r} exited with {self.proc.returncode}:\n{out}")
            if (out.strip() or wanted) and all(_port_open(p) for p in ports):
                return
            time.sleep(0.1)
        pytest.fail(f"background command {cmd_text!r} not ready after {READY_TIMEOUT_S:.0f} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run_console(block: Block, box: Sandbox, tmp: Path) -> int:
    background: list[Background] = []
    n = 0
    try:
        for cmd in commands_of(block):
            text = box.remap(cmd.text)
            expected = box.remap(cmd.expected)
            where = f"{block.doc.relative_to(ROOT)}:{cmd.line}"
            n += 1
            if cmd.background:
                log = tmp / f"bg-{cmd.line}.log"
                with log.open("wb") as f:
                    proc = subprocess.Popen(["bash", "-c", "exec " + text[:-2]], cwd=box.root, env=box.env,
                                            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
                bg = Background(cmd=cmd, proc=proc, log=log)
                background.append(bg)
                bg.wait_ready(text)
                continue
            res = subprocess.run(["bash", "-c", text], cwd=box.root, env=box.env, capture_output=False,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 timeout=COMMAND_TIMEOUT_S, check=False)
            actual = terminal_text(res.stdout.decode("utf-8", errors="replace"))
            assert matches(expected, actual), (
                f"{where}: output of `{text}` (exit {res.returncode}) differs from the document.\n"
                f"--- expected\n{expected}\n--- actual\n{actual}"
            )
            shown = [ln for ln in expected.split("\n") if ln.strip() and ln.strip() != "..."]
            assert res.returncode == 0 or shown, (
                f"{where}: `{text}` failed (exit {res.returncode}) but the document shows no output:\n{actual}"
            )
    finally:
        for bg in reversed(background):
            bg.stop()
    for bg in background:
        actual = bg.output()
        expected = box.remap(bg.cmd.expected)
        assert matches(expected, actual), (
            f"{block.doc.relative_to(ROOT)}:{bg.cmd.line}: output of background `{bg.cmd.text}` differs.\n"
            f"--- expected\n{expected}\n--- actual\n{actual}"
        )
    return n


def run_python(block: Block, expected: str | None, box: Sandbox, tmp: Path) -> None:
    script = tmp / f"block-{block.line}.py"
    script.write_text(box.remap(block.text), encoding="utf-8")
    res = subprocess.run([sys.executable, str(script)], cwd=box.root, env=box.env, capture_output=True,
                         text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    assert res.returncode == 0, f"{block.where}: python sample failed:\n{res.stdout}\n{res.stderr}"
    if expected is not None:
        assert matches(box.remap(expected), res.stdout), (
            f"{block.where}: python sample's output differs.\n--- expected\n{expected}\n--- actual\n{res.stdout}"
        )


def run_document(doc: Path, tmp: Path) -> int:
    """Run every executable block of ``doc``; returns the number of commands and samples run."""
    box = make_sandbox(tmp)
    blocks = blocks_of(doc)
    n = 0
    for i, block in enumerate(blocks):
        if block.title is not None:
            target = box.root / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(box.remap(block.text), encoding="utf-8")
        if block.lang == "console":
            n += run_console(block, box, tmp)
        elif block.lang == "python":
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            run_python(block, nxt.text if nxt is not None and nxt.lang == "output" else None, box, tmp)
            n += 1
    return n


@pytest.mark.server
@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_document_examples_run(doc: Path, tmp_path: Path) -> None:
    blocks = blocks_of(doc)
    for b in blocks:
        assert b.lang in EXECUTED | SHOWN, (
            f"{b.where}: fence a block as console, python, output, sh, toml, text, yaml, csv or json (got {b.lang!r})"
        )
    if not any(b.lang in EXECUTED for b in blocks):
        pytest.skip(f"{doc.name} has no executable examples")
    assert run_document(doc, tmp_path) > 0


# ----------------------------------------------------------------------------------------- the rest
def test_docs_exist_and_link_each_other() -> None:
    docs = ROOT / "docs"
    for name in ("index.md", "plant-manager.md", "engineer.md", "operations.md", "configuration.md",
                 "deployment.md", "architecture.md", "modbus.md"):
        assert (docs / name).is_file(), name
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            path = (doc.parent / target).resolve()
            if path.name == "security.md" and not path.exists():
                continue  # written by another change; linked ahead of it
            assert path.is_file(), f"{doc.relative_to(ROOT)} links to a missing {target}"
    index = (docs / "index.md").read_text(encoding="utf-8")
    for name in ("plant-manager.md", "engineer.md", "operations.md", "configuration.md", "deployment.md",
                 "architecture.md", "modbus.md"):
        assert f"({name}" in index, f"docs/index.md does not link {name}"


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for module in (schema, modbus_schema, influx_schema, feeds_schema, reports_schema):
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
                    and value.model_fields and not value.__name__.startswith("_")):
                found.append(value)
    return found


# Where each model is described in docs/configuration.md: the heading of its section.
SECTIONS: dict[str, str] = {
    "PlantModel": "## The file",
    "FleetModel": "## `[fleet]`",
    "HistorianModel": "## `[historian]`",
    "TemplateModel": "## `[[templates]]`",
    "SignalModel": "### `signals`",
    "SiteModel": "## `[[sites]]`",
    "ShiftModel": "### `shifts`",
    "MachineGroupModel": "### `machines`",
    "InventoryModel": "### `inventory`",
    "DemandModel": "### `demand`",
    "DowntimeModel": "### `downtime`",
    "ReasonModel": "#### `reasons`",
    "RulesModel": "#### `rules`",
    "ProductModel": "## `[[products]]`",
    "AlarmModel": "## `[[alarms]]`",
    "SourcesModel": "## `[sources]`",
    "RegisterMapModel": "## `[[sources.register_maps]]`",
    "PointModel": "### `points` of a register map",
    "ModbusDeviceModel": "## `[[sources.modbus]]`",
    "AssetMapModel": "### `assets`",
    "DevicePointModel": "### `points` of a device",
    "InfluxFeedModel": "## `[[sources.influx]]`",
    "InfluxConnectionModel": "### `connection`",
    "InfluxMappingModel": "### `mappings`",
    "FeedsModel": "## `[feeds]`",
    "FeedsHttpModel": "### `[feeds.http]`",
    "ReportsModel": "## `[reports]`",
}


def _section(text: str, heading: str) -> str:
    start = text.find("\n" + heading + "\n")
    assert start >= 0, f"docs/configuration.md has no section {heading!r}"
    rest = text[start + len(heading) + 2:]
    ends = [m.start() for m in re.finditer(r"^#{1,6} ", rest, re.MULTILINE)]
    return rest[: ends[0]] if ends else rest


def _default_text(value: object) -> str | None:
    """How a scalar default is written in the reference (None: not checked)."""
    if value is None or isinstance(value, (list, dict, BaseModel)):
        return None
    if isinstance(value, bool):  # as TOML writes it
        return "true" if value else "false"
    if value == "":
        return '""'
    if hasattr(value, "value"):
        value = value.value
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_configuration_reference_covers_every_key() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    models = _models()
    missing_models = sorted({m.__name__ for m in models} - set(SECTIONS))
    assert not missing_models, f"models without a section in docs/configuration.md: {missing_models}"
    problems = []
    for model in models:
        section = _section(text, SECTIONS[model.__name__])
        rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)` \|.*$", section, re.MULTILINE)}
        for name, info in model.model_fields.items():
            row = rows.get(name)
            if row is None:
                problems.append(f"{model.__name__}.{name}: no table row in {SECTIONS[model.__name__]!r}")
                continue
            cells = [c.strip() for c in row.strip("|").split("|")]
            default_cell = cells[2] if len(cells) > 2 else ""
            if info.is_required():
                if "required" not in default_cell:
                    problems.append(f"{model.__name__}.{name}: required, but the default column says {default_cell!r}")
                continue
            want = _default_text(info.get_default(call_default_factory=True))
            if want is not None and f"`{want}`" not in default_cell:
                problems.append(f"{model.__name__}.{name}: default {want!r} not in {default_cell!r}")
    assert not problems, "\n".join(problems)


def test_configuration_reference_lists_every_enum_value() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    from connectors.config.influx_feed import InfluxApi
    from connectors.modbus.spec import ByteOrder, DataType
    from twin.spec import AlarmKind, ItemKind, MachineStatus, Role, SignalKind, SiteKind, Transport

    for enum_type in (Role, SignalKind, ItemKind, Transport, SiteKind, AlarmKind, MachineStatus, DataType, ByteOrder,
                      InfluxApi):
        for member in enum_type:
            if member.value == "unknown":
                continue
            assert f"`{member.value}`" in text, f"{enum_type.__name__}.{member.name} is not in docs/configuration.md"
    for name in typing.get_args(schema.PriorityName):
        assert f"`{name}`" in text, name
