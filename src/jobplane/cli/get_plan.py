"""``jobplane get``'s decisions, pure: from the command line to what to fetch, how to print
it, what to say when nothing was found and what to watch afterwards (kubectl's ``get``
options). ``cli/get_cmd.py`` does the fetching and printing the plan describes."""

from __future__ import annotations

from dataclasses import dataclass

from jobplane.api.registry import ResourceInfo
from jobplane.cli import output
from jobplane.cli.common import CliError, parse_targets

TABLE_PRINTERS = ("table", "wide")


@dataclass(frozen=True)
class GetOptions:
    """The command line of ``get``, as click hands it over."""

    args: tuple[str, ...]
    all_namespaces: bool = False
    selector: str | None = None
    field_selector: str | None = None
    output: str | None = None
    watch: bool = False
    watch_only: bool = False
    output_watch_events: bool = False
    show_labels: bool = False
    show_kind: bool = False
    no_headers: bool = False
    ignore_not_found: bool = False


@dataclass(frozen=True)
class ParsedGet:
    """The options with their printer and resource arguments resolved (kubectl reports
    these errors before it reads the kubeconfig)."""

    options: GetOptions
    printer: str
    printer_arg: str
    targets: tuple[tuple[ResourceInfo, tuple[str, ...]], ...]
    several_kinds: bool


@dataclass(frozen=True)
class Fetch:
    """One GET: a collection (no names) or the named objects of one kind."""

    info: ResourceInfo
    namespace: str | None  # None: cluster-scoped kind, or every namespace
    names: tuple[str, ...]
    label_selector: str | None
    field_selector: str | None


@dataclass(frozen=True)
class WatchPlan:
    """The watch after the list (``-w``) or instead of it (``--watch-only``)."""

    info: ResourceInfo
    namespace: str | None
    label_selector: str | None
    field_selector: str | None  # with ``metadata.name=`` when a name was given


@dataclass(frozen=True)
class GetPlan:
    fetches: tuple[Fetch, ...]
    printer: str  # table | wide | name | json | yaml | jsonpath | jsonpath-as-json | custom-columns | go-template
    printer_arg: str
    with_kind: bool  # NAME cells as ``job.batch/pi``
    with_namespace: bool  # a NAMESPACE column (``-A``)
    show_labels: bool
    header: bool
    event_column: bool  # an EVENT column (``--output-watch-events``)
    ignore_not_found: bool
    single: bool  # one object named: printed alone, not as a List (with a watch, every object is)
    empty_message: str | None  # to stderr when nothing was printed; None: say nothing
    empty_list: bool  # print an empty List (json/yaml) before the message
    watch: WatchPlan | None
    print_list: bool = True  # False with ``--watch-only``: the list only tells where the watch starts

    @property
    def tables(self) -> bool:
        """Printed from the server's Tables (as opposed to full objects)."""
        return self.printer in TABLE_PRINTERS

    @property
    def wide(self) -> bool:
        return self.printer == "wide"

    def kind_prefix(self, info: ResourceInfo) -> str:
        return output.kind_name(info) if self.with_kind else ""


def parse_get(options: GetOptions) -> ParsedGet:
    """The printer and the resource arguments; ``ValueError`` / ``CliError`` as kubectl words them."""
    printer, arg = output.parse_output(options.output)
    targets, several = parse_targets(options.args)
    if options.all_namespaces and any(names and info.namespaced for info, names in targets):
        raise CliError("a resource cannot be retrieved by name across all namespaces")
    return ParsedGet(options, printer, arg, tuple((info, tuple(names)) for info, names in targets), several)


def no_resources_message(infos: list[ResourceInfo], all_namespaces: bool, ns: str) -> str:
    if not all_namespaces and all(i.namespaced for i in infos):
        return f"No resources found in {ns} namespace."
    return "No resources found"


def plan_get(parsed: ParsedGet, namespace: str) -> GetPlan:
    """What ``get`` does, given the namespace the connection defaults to."""
    opts = parsed.options
    list_ns = None if opts.all_namespaces else namespace
    tables = parsed.printer in TABLE_PRINTERS
    watching = opts.watch or opts.watch_only
    fetches = tuple(Fetch(info, list_ns if info.namespaced else None, names, opts.selector, opts.field_selector)
                    for info, names in parsed.targets)
    names_given = any(names for _, names in parsed.targets)
    single = len(parsed.targets) == 1 and len(parsed.targets[0][1]) == 1
    message = no_resources_message([info for info, _ in parsed.targets], opts.all_namespaces, namespace)
    if tables:
        empty_message = None if watching or names_given else message
        empty_list = False
    else:
        empty_message = None if watching or single or parsed.printer == "name" else message
        empty_list = empty_message is not None and parsed.printer in ("json", "yaml")
    watch = None
    if watching:
        # kubectl's get --watch: the watch starts at the resourceVersion of what was fetched,
        # also when it is not printed (--watch-only); only the first kind is watched.
        info, names = parsed.targets[0]
        fs = opts.field_selector
        if names:
            fs = ",".join(filter(None, [fs, f"metadata.name={names[0]}"]))
        watch = WatchPlan(info, list_ns if info.namespaced else None, opts.selector, fs)
        if opts.watch_only:
            fetches = fetches[:1]
    return GetPlan(
        fetches=fetches,
        printer=parsed.printer,
        printer_arg=parsed.printer_arg,
        with_kind=tables and (parsed.several_kinds or opts.show_kind),
        with_namespace=opts.all_namespaces,
        show_labels=opts.show_labels,
        header=not opts.no_headers,
        event_column=opts.output_watch_events,
        ignore_not_found=opts.ignore_not_found,
        single=single,
        empty_message=empty_message,
        empty_list=empty_list,
        watch=watch,
        print_list=not (watching and opts.watch_only),
    )
