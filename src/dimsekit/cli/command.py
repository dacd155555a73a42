"""The command class every dimsekit command uses: ``--help`` lists options
under their headings, as DCMTK does, and the command line is read in order
before click parses it (:func:`walk_args`), so that mutually exclusive
options resolve rightmost-wins (:func:`last_given`) and a command can tell
where each argument stood (:func:`args_in_order`).  Public click API only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import click


class GroupedOption(click.Option):
    """A click option that remembers the ``--help`` heading it belongs to."""

    def __init__(self, *args: Any, group: str = "options",
                 aliases: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.group = group
        #: spellings argv pre-processing rewrites to this option (``-x=``)
        self.aliases = aliases

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or not self.aliases:
            return record
        return ", ".join((*self.aliases, record[0])), record[1]


class DimsekitCommand(click.Command):
    """A click command whose help lists options under their group headings,
    and which notes every option and argument in command-line order
    (:func:`args_in_order`, :func:`last_given`) before click parses them.

    ``defer_gc=True``: the ``dimsekit`` process starts with the cyclic
    garbage collector off (the imports of a run allocate much and free
    little: ~20 ms less start-up), and the host turns it on when a command
    starts, unless the command says it will do so itself once its imports
    are done (find does: ``gc.freeze()``, then ``gc.enable()``)."""

    def __init__(self, *args: Any, defer_gc: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.defer_gc = defer_gc

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = walk_args(self, ctx, args)
        named = _named_peer(self, args, given)
        if named is not None:
            args = named
            given = walk_args(self, ctx, args)
        ctx.meta[_IN_ORDER] = (ctx, given)
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):
                continue  # arguments are in the usage line
            record = param.get_help_record(ctx)
            if record is None:
                continue
            heading = getattr(param, "group", "general")
            groups.setdefault(heading, []).append(record)
        for heading, records in groups.items():
            with formatter.section(heading):
                formatter.write_dl(records)


def _named_peer(command: click.Command, args: list[str], given: list[Given]) -> list[str] | None:
    """``dimsekit CMD NAME ...`` where NAME is a configured peer
    (:mod:`dimsekit.config`) and the command takes ``PEER PORT``: NAME
    becomes the peer's host, its port is put in unless the next argument is
    one, and its association options go before the user's (whose own
    options, coming later, win).  None: nothing to change."""
    arguments = [p.name for p in command.params if isinstance(p, click.Argument)]
    if arguments[:2] != ["peer", "port"]:
        return None
    positional = [g for g in given if g.param is None and g.position >= 0]
    if not positional:
        return None
    name = positional[0].values[0]
    if name.isdigit() or name.startswith(("@", "-", "+")):
        return None
    from dimsekit.config import load_config

    config = load_config()
    entry = config.peers.get(name)
    if entry is None:
        return None
    for warning in config.warnings:
        click.echo(f"W: {warning}", err=True)
    port_given = len(positional) > 1 and positional[1].values[0].isdigit()
    at = positional[0].position
    return [*entry.options(), *args[:at], entry.host,
            *([] if port_given else [str(entry.port)]), *args[at + 1:]]


# ---------------------------------------------------------------------------
# the command line in order
# ---------------------------------------------------------------------------

#: ``ctx.meta`` slot: ``(ctx, [Given, ...])`` noted by DimsekitCommand
_IN_ORDER = "dimsekit.args_in_order"


class Given(NamedTuple):
    """One option occurrence (``param`` the click option, ``values`` the
    words it took) or one positional argument (``param`` None, one value)."""

    param: click.Option | None
    values: tuple[str, ...]
    #: where a positional argument stood in the words walked (-1: an option)
    position: int = -1


def walk_args(command: click.Command, ctx: click.Context, args: list[str]) -> list[Given]:
    """Every option occurrence and positional argument of ``args``, in order.

    click hands a callback each option's value, not where it stood; this walk
    reads ``args`` as click's parser does, from public click API only
    (``get_params``, ``opts``, ``secondary_opts``, ``nargs``, ``is_flag``,
    ``count``): ``--opt=value``, ``-kVALUE``, clustered short flags (``-qv``),
    ``--`` (everything after it positional), and options taking several
    values (``+tls KEY CERT``).  Unknown options take no value (click
    reports them when it parses).
    """
    long_opts: dict[str, click.Option] = {}
    short_opts: dict[str, click.Option] = {}
    prefixes = {"-", "--"}
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue
        for opt in (*param.opts, *param.secondary_opts):
            prefix, name = _split_opt(opt)
            prefixes.add(prefix[:1])
            if len(prefix) == 1 and len(name) == 1:
                short_opts[opt] = param
            else:
                long_opts[opt] = param
                prefixes.add(prefix)

    def normal(opt: str) -> str:
        if ctx.token_normalize_func is None:
            return opt
        prefix, name = _split_opt(opt)
        return f"{prefix}{ctx.token_normalize_func(name)}"

    out: list[Given] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not (arg[:1] in prefixes and len(arg) > 1):
            out.append(Given(None, (arg,), i - 1))
            if not ctx.allow_interspersed_args:
                break  # the first positional ends the options
            continue
        opt, eq, attached = arg.partition("=")
        found = long_opts.get(normal(opt))
        if found is not None:
            n = _takes(found)
            if eq and n:
                out.append(Given(found, (attached, *args[i:i + n - 1])))
                i += n - 1
            else:
                out.append(Given(found, tuple(args[i:i + n])))
                i += n
            continue
        if arg[:2] in prefixes:  # "--nope": unknown, never a cluster of short ones
            if ctx.ignore_unknown_options:
                out.append(Given(None, (arg,)))
            continue
        for j in range(1, len(arg)):  # -qv, -kVALUE: short options, clustered
            found = short_opts.get(normal(arg[0] + arg[j]))
            if found is None:
                break  # unknown: click reports it
            n = _takes(found)
            if not n:
                out.append(Given(found, ()))
            elif j + 1 < len(arg):  # the rest of the word is the first value
                out.append(Given(found, (arg[j + 1:], *args[i:i + n - 1])))
                i += n - 1
                break
            else:
                out.append(Given(found, tuple(args[i:i + n])))
                i += n
                break
    else:
        return out
    # "--", or the first positional without interspersed arguments
    out.extend(Given(None, (a,), j) for j, a in enumerate(args[i:], i))
    return out


def _split_opt(opt: str) -> tuple[str, str]:
    """``"--name"`` -> ``("--", "name")``, ``"+tls"`` -> ``("+", "tls")``
    (click's rule: a doubled first character is a two-character prefix)."""
    first = opt[:1]
    if first.isalnum():
        return "", opt
    if opt[1:2] == first:
        return opt[:2], opt[2:]
    return first, opt[1:]


def _takes(param: click.Option) -> int:
    """How many words an occurrence of ``param`` takes."""
    return 0 if param.is_flag or param.count else param.nargs


def args_in_order(ctx: click.Context) -> list[Given] | None:
    """The command line of ``ctx``'s command as :func:`walk_args` read it,
    or None when the command is not a :class:`DimsekitCommand`."""
    record = ctx.meta.get(_IN_ORDER)
    if record is None or record[0] is not ctx:
        return None
    return record[1]


def option(*decls: str, group: str, **kwargs: Any) -> Callable:
    """``click.option`` for a :class:`GroupedOption` under heading ``group``."""
    return click.option(*decls, cls=GroupedOption, group=group, **kwargs)


def _compose(*decorators: Callable) -> Callable:
    def apply(func: Callable) -> Callable:
        for deco in reversed(decorators):
            func = deco(func)
        return func

    return apply


def _collect(names: tuple[str, ...], into: str, build: Callable[..., Any]) -> Callable:
    """Wrap a callback: pop ``names`` from its kwargs, pass ``into=build(...)``."""

    def deco(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            picked = {name: kwargs.pop(name) for name in names}
            kwargs[into] = build(**picked)
            return func(*args, **kwargs)

        return wrapper

    return deco


def last_given(ctx: click.Context, names: tuple[str, ...]) -> str | None:
    """Which of the options ``names`` (parameter names) came last, if any.

    DCMTK resolves mutually exclusive options rightmost-wins.  Options that
    share one click name get that from click (>= 8.2), but only when they
    take the same number of values; ``-tls`` / ``+tls KEY CERT`` / ``+tla``
    do not, so the command line is read in order (:func:`args_in_order`;
    a command that is not a :class:`DimsekitCommand` has no order noted).
    """
    seen = [g.param.name for g in args_in_order(ctx) or ()
            if g.param is not None and g.param.name in names]
    if seen:
        return seen[-1]
    # none on the command line (an environment variable, a default map), or
    # no order noted: the first of names given wins
    for name in names:
        if _given(ctx, name):
            return name
    return None


def _given(ctx: click.Context, name: str) -> bool:
    from click.core import ParameterSource

    source = ctx.get_parameter_source(name)
    return source is not None and source not in (ParameterSource.DEFAULT,)
