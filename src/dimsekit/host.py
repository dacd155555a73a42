"""Plugin loading and what plugins contribute.

:class:`Host` wraps a pluggy ``PluginManager``: it loads the ``dimsekit``
entry-point group (the built-in find plugin is declared there like any third
party's), isolates failing plugins (one warning line each), and collects
contributions hook by hook, plugin by plugin, so one broken hook
implementation cannot take the others down.
"""

from __future__ import annotations

import os
import sys
from functools import cached_property
from typing import Any, Iterable

import pluggy

from dimsekit import hookspecs
from dimsekit.errors import DimsekitError
from dimsekit.records import ExtendedNegotiationFlag, InformationModel, PluginInfo, Writer

PROJECT = "dimsekit"
#: comma list of entry-point names to load besides the built-ins; "" = built-ins only
LOAD_ENV = "DIMSEKIT_LOAD_PLUGINS"
#: commands the host itself owns; a plugin may not shadow them
HOST_COMMANDS = frozenset({"plugins"})


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
        from importlib.metadata import entry_points

        env = os.environ if env is None else env
        wanted: set[str] | None = None
        if LOAD_ENV in env:
            wanted = {n.strip() for n in env[LOAD_ENV].split(",") if n.strip()}
        def builtin(ep) -> bool:
            # by module, not by distribution: reading a distribution's
            # metadata costs start-up time every `dimsekit` run pays
            return ep.value.split(":")[0].split(".")[0] == PROJECT

        # built-ins first, then third parties by name: a stable order for
        # hook results and for messages naming two plugins
        eps = sorted(entry_points(group=PROJECT), key=lambda ep: (not builtin(ep), ep.name))
        for ep in eps:
            if wanted is not None and not builtin(ep) and ep.name not in wanted:
                continue
            if ep.name in self.plugins:
                continue  # the same distribution seen twice on sys.path
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

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call one hook plugin by plugin: ``[(plugin_name, item), ...]``.

        A plugin whose implementation raises is reported once and marked
        failed; the other plugins' contributions stand.
        """
        out: list[tuple[str, Any]] = []
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order
            name = impl.plugin_name
            try:
                args = {a: kwargs[a] for a in impl.argnames}
                result = impl.function(**args)
                items = list(result or ())
            except Exception as exc:  # noqa: BLE001
                info = self.plugins.setdefault(name, PluginInfo(name))
                self._failed(info, exc)
                continue
            out.extend((name, item) for item in items)
        return out

    @cached_property
    def _models(self) -> list[tuple[str, InformationModel]]:
        return self.collect("dimsekit_information_models")

    @cached_property
    def _flags(self) -> list[tuple[str, ExtendedNegotiationFlag]]:
        return self.collect("dimsekit_extended_negotiation_flags")

    @cached_property
    def _writers(self) -> list[tuple[str, Writer]]:
        return self.collect("dimsekit_writers")

    def information_models(self, service: str) -> list[InformationModel]:
        """Models contributed for ``service`` (e.g. ``"find"``), unique by name."""
        return _unique(self._models, service, "information model")

    def extended_negotiation_flags(self, service: str) -> list[ExtendedNegotiationFlag]:
        """Extended-negotiation flags contributed for ``service``."""
        return _unique(self._flags, service, "extended negotiation flag")

    def writers(self, service: str) -> list[Writer]:
        """Output formats contributed for ``service``."""
        return _unique(self._writers, service, "output format")

    def commands(self) -> dict[str, Any]:
        """Every command plugins contribute, by name; a collision is an error."""
        found: dict[str, tuple[str, Any]] = {}
        for plugin, command in self.collect("dimsekit_commands", host=self):
            name = command.name
            if name in HOST_COMMANDS:
                raise PluginError(
                    f"plugin {plugin!r} provides command {name!r}, which is dimsekit's own"
                )
            if name in found:
                raise PluginError(
                    f"command {name!r} is provided by both plugin {found[name][0]!r} "
                    f"and plugin {plugin!r}; uninstall one, or choose with "
                    f"{LOAD_ENV}=name,..."
                )
            found[name] = (plugin, command)
        return {name: cmd for name, (_, cmd) in found.items()}


def _unique(items: Iterable[tuple[str, Any]], service: str, what: str) -> list[Any]:
    seen: dict[str, str] = {}
    out = []
    for plugin, item in items:
        if item.service != service:
            continue
        if item.name in seen:
            raise PluginError(
                f"{what} {item.name!r} is provided by both plugin {seen[item.name]!r} "
                f"and plugin {plugin!r}"
            )
        seen[item.name] = plugin
        out.append(item)
    return out
