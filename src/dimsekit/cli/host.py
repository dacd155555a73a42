"""Plugin loading and what plugins contribute.

:class:`Host` wraps a pluggy ``PluginManager``: it loads the ``dimsekit``
entry-point group (the built-in find plugin is declared there like any third
party's), isolates failing plugins (one warning line each), and collects
contributions by calling each hook through pluggy (so hook wrappers work);
only when a call fails does it go plugin by plugin to name the culprit, so
one broken hook implementation cannot take the others down.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any

import pluggy

from dimsekit import hookspecs
from dimsekit.errors import DimsekitError
from dimsekit.records import (
    ExtendedNegotiationFlag,
    InformationModel,
    PluginInfo,
    Writer,
)

PROJECT = "dimsekit"
#: comma list of entry-point names to load besides the built-ins; "" = built-ins only
LOAD_ENV = "DIMSEKIT_LOAD_PLUGINS"
#: commands the host itself owns; a plugin may not shadow them
HOST_COMMANDS = frozenset({"plugins", "peers", "completion"})


#: a writer's ``service`` that offers it to every command writing data sets
ANY_SERVICE = "*"

#: where a run's plugin-added option values are kept (``click.Context.meta``)
ADDED_OPTIONS = "dimsekit.added_options"


def added_options() -> dict[str, Any]:
    """The values of the options plugins added to the running command
    (``dimsekit_add_options``): parameter name -> value; empty outside a
    command or when none were added."""
    import click

    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(ADDED_OPTIONS, {})) if ctx is not None else {}


class PluginError(DimsekitError):
    """Plugins that cannot work together (e.g. two provide one command)."""


def warn(message: str) -> None:
    """One warning line on stderr (logging is not set up yet at load time)."""
    print(f"W: {message}", file=sys.stderr)


class Host:
    """The plugin manager and everything plugins contributed to it."""

    def __init__(self, pm: pluggy.PluginManager | None = None):
        if pm is None:
            pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(hookspecs)
        self.pm = pm
        self.plugins: dict[str, PluginInfo] = {}
        #: hook name -> plugins whose implementation of it failed
        self._left_out: dict[str, set[str]] = {}

    # -- loading ----------------------------------------------------------

    def register(self, plugin: Any, name: str, *, distribution: str | None = None,
                 version: str | None = None, dist: Any = None) -> bool:
        """Register ``plugin`` under ``name``; a failure costs a warning line.

        A second plugin under a name already taken is skipped with a warning;
        the first one, which works, keeps its name and its status."""
        if self.pm.has_plugin(name):
            first = self.plugins.get(name)
            owner = f" (distribution {first.distribution})" if first and first.distribution else ""
            warn(f"plugin {name!r}{owner} is already loaded: a second plugin under "
                 f"that name skipped")
            return False
        info = PluginInfo(name, distribution, version, "loaded", dist=dist)
        self.plugins[name] = info
        try:
            self.pm.register(plugin, name=name)
            unknown = [h.name for h in self.pm.get_hookcallers(plugin) or []
                       if not h.has_spec()]
            if unknown:
                self.pm.unregister(plugin)
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook(s) {', '.join(sorted(unknown))}"
                )
        except Exception as exc:  # noqa: BLE001 - isolate any plugin failure
            self._failed(info, exc)
            return False
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        return True

    def _failed(self, info: PluginInfo, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        info.status = f"failed: {error}"
        dist = ""
        if info.distribution:
            dist = f" (distribution {info.distribution} {info.version or '?'})"
        warn(f"plugin {info.name!r}{dist} skipped: {error}")

    def load_entry_points(self, env: dict[str, str] | None = None) -> None:
        """Load the ``dimsekit`` entry-point group, honouring DIMSEKIT_LOAD_PLUGINS."""
        environ: Mapping[str, str] = os.environ if env is None else env
        wanted: set[str] | None = None
        if LOAD_ENV in environ:
            wanted = {n.strip() for n in environ[LOAD_ENV].split(",") if n.strip()}
        def builtin(ep) -> bool:
            # by module, not by distribution: reading a distribution's
            # metadata costs start-up time every `dimsekit` run pays
            return ep.value.split(":")[0].split(".")[0] == PROJECT

        # built-ins first, then third parties by name: a stable order for
        # hook results and for messages naming two plugins
        eps = sorted(entry_points(PROJECT), key=lambda ep: (not builtin(ep), ep.name))
        for ep in eps:
            if wanted is not None and not builtin(ep) and ep.name not in wanted:
                continue
            if ep.name in self.plugins:
                first = self.plugins[ep.name]
                other = getattr(getattr(ep, "dist", None), "name", None)
                if other is not None and first.dist is not None and other != getattr(
                        first.dist, "name", None):
                    warn(f"plugin {ep.name!r} of distribution {other} skipped: the name "
                         f"is taken by distribution {first.distribution}")
                continue  # else the same distribution seen twice on sys.path
            dist = getattr(ep, "dist", None)
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001
                info = PluginInfo(ep.name, status="failed", dist=dist)
                self.plugins[ep.name] = info
                self._failed(info, exc)
                continue
            self.register(plugin, ep.name, dist=dist)

    # -- collecting -------------------------------------------------------

    def collect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call one hook through pluggy: every item the plugins contributed.

        Hook wrappers (``@hookimpl(wrapper=True)``, old-style
        ``hookwrapper=True``) run as pluggy runs them and may change the
        result.  Items come in the order of ``get_hookimpls()`` (registration
        order, built-ins first): pluggy calls the last registered first, so
        its list of results is read backwards.

        Only when that call fails (it raises, or a result is not an iterable)
        does the host go plugin by plugin to name the culprit: it calls the
        hook again with one more plugin each time (plain implementations
        first, then wrappers); a plugin whose addition makes the call fail is
        reported once, marked failed and left out of this hook from then on.
        The other plugins' contributions stand.
        """
        try:
            return _items(self._caller(hook_name)(**kwargs))
        except Exception:  # noqa: BLE001 - some plugin failed: name it
            return self._isolate(hook_name, kwargs)

    def _isolate(self, hook_name: str, kwargs: dict[str, Any]) -> list[Any]:
        """:meth:`collect` plugin by plugin: what the plugins that work
        contribute, the others reported and left out of ``hook_name``."""
        kept: list[Any] = []
        items: list[Any] = []
        for name, plugin in self._implementers(hook_name):
            try:
                items = _items(self._caller(hook_name, keep=[*kept, plugin])(**kwargs))
            except Exception as exc:  # noqa: BLE001 - isolate any plugin failure
                self._left_out.setdefault(hook_name, set()).add(name)
                self._failed(self.plugins.setdefault(name, PluginInfo(name)), exc)
                continue
            kept.append(plugin)
        return items

    def contributors(self, hook_name: str, match: Callable[[Any], bool],
                     **kwargs: Any) -> list[str]:
        """The plugins whose implementation of ``hook_name``, called alone,
        contributes an item ``match`` accepts: one name per item, in
        registration order.

        For messages only (two plugins providing one name): it calls the
        hook again, once per plugin, so a host asks only when it is about to
        report a conflict.  An item that a wrapper adds to the others'
        results, rather than on its own, is not found.
        """
        names: list[str] = []
        for name, plugin in self._implementers(hook_name):
            try:
                items = _items(self._caller(hook_name, keep=[plugin])(**kwargs))
            except Exception:  # noqa: BLE001 - its failure is reported when collected
                items = []
            names.extend(name for item in items if match(item))
        return names

    def _implementers(self, hook_name: str) -> list[tuple[str, Any]]:
        """``(name, plugin)`` implementing ``hook_name``, not left out of it:
        plain implementations first, then wrappers (pluggy's own order)."""
        left_out = self._left_out.get(hook_name, set())
        out: list[tuple[str, Any]] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name not in left_out and all(p is not impl.plugin for _, p in out):
                out.append((impl.plugin_name, impl.plugin))
        return out

    def _caller(self, hook_name: str, keep: list[Any] | None = None) -> Any:
        """The hook caller for ``hook_name``: every plugin implementing it but
        those left out of it, or only the plugins in ``keep``."""
        caller = getattr(self.pm.hook, hook_name)
        left_out = self._left_out.get(hook_name, set())
        if keep is None and not left_out:
            return caller
        remove = [impl.plugin for impl in caller.get_hookimpls()
                  if impl.plugin_name in left_out
                  or (keep is not None and all(impl.plugin is not k for k in keep))]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=remove)

    @cached_property
    def _models(self) -> list[InformationModel]:
        return self.collect("dimsekit_information_models")

    @cached_property
    def _flags(self) -> list[ExtendedNegotiationFlag]:
        return self.collect("dimsekit_extended_negotiation_flags")

    @cached_property
    def _writers(self) -> list[Writer]:
        return self.collect("dimsekit_writers")

    def information_models(self, service: str) -> list[InformationModel]:
        """Models contributed for ``service`` (e.g. ``"find"``), unique by name."""
        return self._unique("dimsekit_information_models", self._models, service,
                            "information model")

    def extended_negotiation_flags(self, service: str) -> list[ExtendedNegotiationFlag]:
        """Extended-negotiation flags contributed for ``service``."""
        return self._unique("dimsekit_extended_negotiation_flags", self._flags, service,
                            "extended negotiation flag")

    def writers(self, service: str) -> list[Writer]:
        """Output formats contributed for ``service``, and those contributed
        for every command that writes data sets (``service="*"``)."""
        return self._unique("dimsekit_writers", self._writers, service, "output format",
                            also=ANY_SERVICE)

    def commands(self) -> dict[str, Any]:
        """Every command plugins contribute, by name; a collision is an error."""
        found: dict[str, Any] = {}
        for command in self.collect("dimsekit_commands", host=self):
            name = command.name
            if name in HOST_COMMANDS:
                who = self.contributors("dimsekit_commands", _named(name), host=self)
                raise PluginError(
                    f"{_naming(who[:1])} provides command {name!r}, which is dimsekit's own"
                )
            if name in found:
                who = self.contributors("dimsekit_commands", _named(name), host=self)
                raise PluginError(
                    f"command {name!r} is provided by {_naming(who[:2], 2)}; "
                    f"uninstall one, or choose with {LOAD_ENV}=name,..."
                )
            found[name] = command
        for name, command in found.items():
            self._add_options(name, command)
        return found

    def _add_options(self, name: str, command: Any) -> None:
        """What ``dimsekit_add_options`` contributes to ``command``, and the
        callback wrapped so its values go to ``dimsekit_before_command``."""
        added: list[str] = []
        for plugin_name, plugin in self._implementers("dimsekit_add_options"):
            try:
                decorators = _items(self._caller("dimsekit_add_options", keep=[plugin])(
                    command=name, host=self))
            except Exception as exc:  # noqa: BLE001 - isolate any plugin failure
                self._left_out.setdefault("dimsekit_add_options", set()).add(plugin_name)
                self._failed(self.plugins.setdefault(plugin_name, PluginInfo(plugin_name)),
                             exc)
                continue
            for decorate in decorators:
                before = list(command.params)
                taken = {opt for p in before for opt in (*p.opts, *p.secondary_opts)}
                names = {p.name for p in before}
                decorate(command)
                for param in command.params[len(before):]:
                    clash = ({*param.opts, *param.secondary_opts} & taken
                             or ({param.name} & names))
                    if clash:
                        command.params[:] = before
                        raise PluginError(
                            f"plugin {plugin_name!r} adds option "
                            f"{'/'.join(sorted(clash))} to command {name!r}, which has it")
                    added.append(str(param.name))
        if not added:
            return
        # click adds options at the end; the command's arguments stay last in --help
        own = command.callback

        def callback(**kwargs: Any) -> Any:
            import click

            values = {key: kwargs.pop(key) for key in added if key in kwargs}
            click.get_current_context().meta[ADDED_OPTIONS] = values
            # called as it is: a UsageError it raises is the command line's
            self._caller("dimsekit_before_command")(command=name, options=values)
            return own(**kwargs)

        command.callback = callback

    def _unique(self, hook_name: str, items: Iterable[Any], service: str,
                what: str, also: str | None = None) -> list[Any]:
        seen: set[str] = set()
        out = []
        for item in items:
            if item.service != service and (also is None or item.service != also):
                continue
            if item.name in seen:
                who = self.contributors(hook_name, _named(item.name, service))
                raise PluginError(
                    f"{what} {item.name!r} is provided by {_naming(who[:2], 2)}"
                )
            seen.add(item.name)
            out.append(item)
        return out


def entry_points(group: str) -> list[Any]:
    """``importlib.metadata.entry_points(group=group)``, as a list.

    Importing ``importlib.metadata`` (email, zipfile, csv, pathlib, ...)
    costs ~20-30 ms, a quarter of ``dimsekit --help``.  So when every
    distribution is a plain ``*.dist-info``/``*.egg-info`` folder or file in
    a folder on ``sys.path`` and no import hook provides distributions of its
    own, the entry points are read here, the way importlib.metadata reads
    them (Python 3.10-3.13: the same distributions, the first of each
    normalised name, in the same order; ``tests/test_perf_equivalence.py``
    holds the two side by side); anything else goes to importlib.metadata.
    The distribution of each entry point (``ep.dist``) is importlib's own,
    made when first used (``dimsekit plugins``, a name conflict)."""
    found = _read_entry_points(group)
    if found is None:
        from importlib.metadata import entry_points as metadata_entry_points

        return list(metadata_entry_points(group=group))
    return found


def _normalized(name: str) -> str:
    """importlib.metadata's ``Prepared.normalize``."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _read_entry_points(group: str) -> list[Any] | None:
    """:func:`entry_points` read from the folders on ``sys.path``; None:
    not a case this reads as importlib.metadata does (see there)."""
    from importlib.machinery import PathFinder

    if any(getattr(finder, "find_distributions", None) is not None
           and finder is not PathFinder for finder in sys.meta_path):
        return None
    seen: set[str] = set()
    found: list[Any] = []
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.exists(root):  # a zip file: importlib.metadata's
                return None
            continue
        if os.path.basename(entry).lower().endswith(".egg"):
            return None
        by_name: dict[str, list[str]] = {}
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                by_name.setdefault(_normalized(low.rpartition(".")[0].partition("-")[0]),
                                   []).append(child)
        for child in (c for same in by_name.values() for c in same):
            stem, ext = os.path.splitext(child)
            if ext not in (".dist-info", ".egg-info"):
                return None  # importlib.metadata would name it from its METADATA
            key = _normalized(stem.partition("-")[0])
            if key in seen:
                continue
            seen.add(key)
            path = os.path.join(entry, child)
            try:
                with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                    PermissionError):
                continue
            except (OSError, ValueError):
                return None
            eps = _parse_entry_points(text, group, path)
            if eps is None:
                return None
            found.extend(eps)
    return found


def _parse_entry_points(text: str, group: str, path: str) -> list[Any] | None:
    """The entry points of ``group`` in an ``entry_points.txt``, as
    importlib.metadata parses it; None for a line it would refuse."""
    section = None
    dist = _Distribution(path)
    out = []
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        if "=" not in line:
            return None
        name, _, value = line.partition("=")
        if section == group:
            out.append(_EntryPoint(name.strip(), value.strip(), section, dist))
    return out


class _EntryPoint:
    """An entry point read by :func:`_read_entry_points`: importlib.metadata's
    ``EntryPoint`` as the host uses it (``name``, ``value``, ``group``,
    ``dist``, ``load()``)."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: Any):
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def load(self) -> Any:
        """importlib.metadata's ``EntryPoint.load``."""
        import functools
        import re
        from importlib import import_module

        match = re.match(r"(?P<module>[\w.]+)\s*"
                         r"(:\s*(?P<attr>[\w.]+)\s*)?"
                         r"((?P<extras>\[.*\])\s*)?$", self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        module = import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, attrs, module)

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


class _Distribution:
    """importlib.metadata's distribution of a ``*.dist-info`` folder, made
    on first use (its name, version, ...)."""

    def __init__(self, path: str):
        self._path = path
        self._dist: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._dist is None:
            from importlib.metadata import PathDistribution
            from pathlib import Path

            self._dist = PathDistribution(Path(self._path))
        return getattr(self._dist, name)


def _items(results: Any) -> list[Any]:
    """Flatten pluggy's list of results (each an iterable or None), read
    backwards: pluggy calls the last registered plugin first."""
    out: list[Any] = []
    for result in reversed(results):
        out.extend(result or ())
    return out


def _named(name: str, service: str | None = None) -> Callable[[Any], bool]:
    """Matches a contribution called ``name`` (of ``service``, if given)."""
    def match(item: Any) -> bool:
        return item.name == name and (service is None or item.service == service)
    return match


def _naming(plugins: list[str], count: int = 1) -> str:
    """``plugin 'a'`` / ``both plugin 'a' and plugin 'b'``; what no plugin
    contributes on its own came from a hook wrapper."""
    named = [f"plugin {name!r}" for name in plugins]
    named += ["a hook wrapper"] * (count - len(named))
    if count == 1:
        return named[0]
    if named[0] == named[1] == "a hook wrapper":
        return "hook wrappers twice"
    return f"both {named[0]} and {named[1]}"
