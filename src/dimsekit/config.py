"""Named peers: a TOML file of ``[peers.NAME]`` tables.

    # ~/.config/dimsekit/config.toml
    [peers.pacs]
    host = "pacs.example.org"
    port = 104
    called_aet = "PACS"
    calling_aet = "ME"
    dimse_timeout = 60

    [peers.secure]
    host = "pacs.example.org"
    port = 2762
    called_aet = "PACS"
    tls = "authenticated"            # or "anonymous"
    tls_key = "/etc/dimsekit/me.key"
    tls_cert = "/etc/dimsekit/me.crt"
    tls_ca_files = ["/etc/dimsekit/ca.pem"]

Where: ``$DIMSEKIT_CONFIG``, else ``$XDG_CONFIG_HOME/dimsekit/config.toml``,
else ``~/.config/dimsekit/config.toml``.  A missing file is no peers; a
bad one is a :class:`~dimsekit.errors.UsageError` naming the file, the
line and the key.  Every key is an association option (:data:`KEYS` says
which); the command line turns each into the option it stands for
(:meth:`PeerEntry.options`), put before the user's own, which win.
Nothing here prints, exits or reads anything but the file.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dimsekit.errors import UsageError

CONFIG_ENV = "DIMSEKIT_CONFIG"

_TRANSFER = {"local": "--propose-uncompr", "little": "-xe", "big": "-xb",
             "implicit": "-xi", "deflated": "-xd"}
_PEER_CERT = {"require": "-rc", "verify": "-vc", "ignore": "-ic"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def _port(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536


def _texts(v: Any) -> bool:
    return isinstance(v, list) and all(_text(x) for x in v)


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _ae(v: Any) -> bool:
    return _text(v) and len(v) <= 16 and v.isascii() and "\\" not in v


#: every key a ``[peers.NAME]`` table may have: (check, what it must be)
KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "host": (_text, "a host name or address"),
    "port": (_port, "a TCP port (1 to 65535)"),
    "called_aet": (_ae, "an AE title (1 to 16 ASCII characters)"),
    "calling_aet": (_ae, "an AE title (1 to 16 ASCII characters)"),
    "connect_timeout": (_number, "seconds (a number)"),
    "acse_timeout": (_number, "seconds (a number)"),
    "dimse_timeout": (_number, "seconds (a number)"),
    "network_timeout": (_number, "seconds (a number)"),
    "max_pdu": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                "a number of bytes"),
    "transfer_syntax": (lambda v: v in _TRANSFER, "one of " + ", ".join(_TRANSFER)),
    "new_vr": (_flag, "true or false"),
    "abort": (_flag, "true or false"),
    "tls": (lambda v: v in ("authenticated", "anonymous", False),
            '"authenticated", "anonymous" or false'),
    "tls_key": (_text, "a file name"),
    "tls_cert": (_text, "a file name"),
    "tls_key_password": (_text, "the key's password (text)"),
    "tls_key_format": (lambda v: v in ("pem", "der"), '"pem" or "der"'),
    "tls_ca_files": (_texts, "a list of file names"),
    "tls_ca_dirs": (_texts, "a list of directory names"),
    "tls_ciphers": (_texts, "a list of cipher suite names"),
    "tls_min_version": (lambda v: v in ("1.2", "1.3"), '"1.2" or "1.3"'),
    "tls_peer_cert": (lambda v: v in _PEER_CERT, '"require", "verify" or "ignore"'),
    "tls_server_name": (_text, "a host name"),
}
#: keys never shown (``dimsekit peers``) nor echoed
SECRET_KEYS = frozenset({"tls_key_password"})


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the configuration is read from (it may not exist)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "dimsekit" / "config.toml"


@dataclass(frozen=True)
class PeerEntry:
    """One ``[peers.NAME]`` table."""

    name: str
    values: dict[str, Any]
    source: str = ""

    @property
    def host(self) -> str:
        return str(self.values["host"])

    @property
    def port(self) -> int:
        return int(self.values.get("port", 104))

    @property
    def tls(self) -> str | None:
        """``"authenticated"``, ``"anonymous"`` or None (plain TCP)."""
        mode = self.values.get("tls")
        if mode in ("authenticated", "anonymous"):
            return str(mode)
        if mode is None and "tls_key" in self.values:
            return "authenticated"
        return None

    def shown(self) -> dict[str, Any]:
        """Its values, passwords masked."""
        return {k: ("****" if k in SECRET_KEYS else v) for k, v in self.values.items()}

    def options(self) -> list[str]:
        """The association options it stands for, as command-line words
        (host and port aside: they are the command's PEER and PORT)."""
        v = self.values
        out: list[str] = []
        for key, opt in (("called_aet", "-aec"), ("calling_aet", "-aet"),
                         ("connect_timeout", "-to"), ("acse_timeout", "-ta"),
                         ("dimse_timeout", "-td"), ("network_timeout", "-tn"),
                         ("max_pdu", "-pdu"), ("tls_min_version", "--tls-min-version"),
                         ("tls_server_name", "--tls-server-name")):
            if key in v:
                out += [opt, f"{v[key]:g}" if isinstance(v[key], float) else str(v[key])]
        if "transfer_syntax" in v:
            out.append(_TRANSFER[v["transfer_syntax"]])
        if "new_vr" in v:
            out.append("+u" if v["new_vr"] else "-u")
        if v.get("abort"):
            out.append("--abort")
        mode = self.tls
        if mode == "authenticated":
            out += ["+tls", str(v["tls_key"]), str(v["tls_cert"])]
        elif mode == "anonymous":
            out.append("+tla")
        if mode is not None:
            if "tls_key_password" in v:
                out += ["+pw", str(v["tls_key_password"])]
            if "tls_key_format" in v:
                out.append("-" + str(v["tls_key_format"]))
            for f in v.get("tls_ca_files", []):
                out += ["+cf", str(f)]
            for d in v.get("tls_ca_dirs", []):
                out += ["+cd", str(d)]
            for c in v.get("tls_ciphers", []):
                out += ["+cs", str(c)]
            if "tls_peer_cert" in v:
                out.append(_PEER_CERT[v["tls_peer_cert"]])
        return out

    def peer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`dimsekit.Peer` (TLS as a
        :class:`~dimsekit.tls.TLSSettings`)."""
        v = self.values
        out: dict[str, Any] = {k: v[k] for k in
                               ("called_aet", "calling_aet", "connect_timeout",
                                "acse_timeout", "dimse_timeout", "network_timeout",
                                "max_pdu", "new_vr") if k in v}
        if "transfer_syntax" in v:
            out["transfer_syntaxes"] = v["transfer_syntax"]
        mode = self.tls
        if mode is not None:
            from dimsekit.tls import TLSSettings

            password = v.get("tls_key_password")
            out["tls"] = TLSSettings(
                mode=mode, key_file=v.get("tls_key"), cert_file=v.get("tls_cert"),
                password_source="given" if password is not None else "null",
                password=password, key_format=v.get("tls_key_format", "pem"),
                ca_files=tuple(v.get("tls_ca_files", ())),
                ca_dirs=tuple(v.get("tls_ca_dirs", ())),
                ciphers=tuple(v.get("tls_ciphers", ())),
                peer_cert=v.get("tls_peer_cert"), server_name=v.get("tls_server_name"),
                min_version=v.get("tls_min_version", "1.2"))
        return out


@dataclass(frozen=True)
class Config:
    """The configuration file as read: its peers, and what to warn about."""

    path: Path
    peers: dict[str, PeerEntry] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def peer(self, name: str) -> PeerEntry:
        try:
            return self.peers[name]
        except KeyError:
            known = ", ".join(sorted(self.peers)) or "none"
            raise UsageError(f"no peer named {name!r} in {self.path} (configured: "
                             f"{known})") from None


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def _line_of(text: str, table: str, key: str | None) -> int | None:
    """The line of ``[table]`` (or of ``key`` in it) in ``text``, 1-based."""
    lines = text.splitlines()
    header = re.compile(r"\s*\[\s*" + r"\s*\.\s*".join(
        re.escape(p) for p in table.split(".")) + r"\s*\]")
    for number, line in enumerate(lines, 1):
        if header.match(line):
            if key is None:
                return number
            for offset, inner in enumerate(lines[number:], number + 1):
                if re.match(r"\s*\[", inner):
                    break
                if re.match(r"\s*" + re.escape(key) + r"\s*=", inner):
                    return offset
            return number
    return None


def _where(path: Path, line: int | None) -> str:
    return f"{path}, line {line}" if line else str(path)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The peers of the configuration file (default: :func:`config_path`);
    no file: no peers.  Raises UsageError for a file that cannot be read
    or is wrong, naming the file, the line and the key."""
    where = Path(path) if path is not None else config_path()
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        return Config(where)
    except OSError as exc:
        raise UsageError(f"cannot read configuration {where}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        data = _toml().loads(text)
    except UnicodeDecodeError:
        raise UsageError(f"configuration {where}: not UTF-8 text") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError: "... (at line 3, column 7)"
        raise UsageError(f"configuration {where}: {exc}") from None
    unknown = [k for k in data if k != "peers"]
    if unknown:
        line = next((n for n, t in enumerate(text.splitlines(), 1) if re.match(
            r"\s*(\[+\s*" + re.escape(unknown[0]) + r"\b|" + re.escape(unknown[0]) + r"\s*=)",
            t)), None)
        raise UsageError(f"configuration {_where(where, line)}: "
                         f"unknown table or key {unknown[0]!r} (only [peers.NAME] tables)")
    peers_table = data.get("peers", {})
    if not isinstance(peers_table, dict):
        raise UsageError(f"configuration {where}: 'peers' must be tables [peers.NAME]")
    peers: dict[str, PeerEntry] = {}
    secret = False
    for name, values in peers_table.items():
        table = f"peers.{name}"
        if not isinstance(values, dict):
            raise UsageError(f"configuration {where}: {table} must be a table")
        if not _NAME.match(name) or name.isdigit():
            raise UsageError(f"configuration {_where(where, _line_of(text, table, None))}: "
                             f"peer name {name!r}: letters, digits, '.', '_' or '-', "
                             f"not a number")
        for key, value in values.items():
            line = _line_of(text, table, key)
            if key not in KEYS:
                raise UsageError(f"configuration {_where(where, line)}: [{table}] unknown key "
                                 f"{key!r} (known: {', '.join(KEYS)})")
            check, wanted = KEYS[key]
            if not check(value):
                raise UsageError(f"configuration {_where(where, line)}: [{table}] {key} = "
                                 f"{value!r}: must be {wanted}")
        if "host" not in values:
            raise UsageError(f"configuration {_where(where, _line_of(text, table, None))}: "
                             f"[{table}] has no host")
        if values.get("tls") == "authenticated" and not (
                "tls_key" in values and "tls_cert" in values):
            raise UsageError(f"configuration {_where(where, _line_of(text, table, 'tls'))}: "
                             f"[{table}] tls = \"authenticated\" needs tls_key and tls_cert")
        if ("tls_key" in values) != ("tls_cert" in values):
            raise UsageError(f"configuration {_where(where, _line_of(text, table, None))}: "
                             f"[{table}] tls_key and tls_cert go together")
        secret = secret or any(k in SECRET_KEYS for k in values)
        peers[name] = PeerEntry(name, dict(values), str(where))
    warnings: list[str] = []
    if secret:
        try:
            mode = where.stat().st_mode
        except OSError:  # pragma: no cover - it was just read
            mode = 0
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(f"configuration {where} holds a key password and others can read "
                            f"it (chmod 600 {where})")
    return Config(where, peers, tuple(warnings))
