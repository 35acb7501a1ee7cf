"""One backend contract for every stateful package (the langgraph checkpoint-conformance idea).

A package registers its three backend factories ONCE, in its tests' ``conftest.py``::

    from llm_common_testkit.contract import StoreContract

    CONTRACT = StoreContract(
        package="cost-tracker",
        local=lambda tmp_path: LocalCostStore(tmp_path / "costs"),
        postgres=lambda url: PostgresCostStore(url),
        supabase=supabase_store,            # (server, url) -> store; may be an async generator
        exercise=lambda store: store.daily_total(...),   # one call that touches the storage
        local_file=lambda tmp_path: tmp_path / "costs" / "costs.sqlite3",
        unavailable_error="cost_tracker.StoreUnavailableError",
        corrupt_error="cost_tracker.StoreCorruptError",
    )
    contract_backend, store_contract = CONTRACT.fixtures()

and gets:

* ``contract_backend``: a fixture parametrised over ``local`` / ``postgres`` / ``supabase`` that
  provisions a private migrated database (or the loopback PostgREST server over one) and hands
  out stores through :meth:`ContractBackend.new_store`, every one closed at teardown. The
  package's own contract tests build their fixtures on it.
* the generic checks, by subclassing :class:`GenericStoreContract` in a test module::

      class TestGenericContract(GenericStoreContract):
          pass

  ``aclose()`` idempotent on every backend; no secret (a password in the database URL, the
  Supabase keys) in ``repr``/``str``, error messages or any log line at DEBUG; an unreachable
  database -> the package's ``StoreUnavailableError`` within ``connect_timeout + 2`` s; a corrupt
  local file -> the package's ``StoreCorruptError`` naming the file, or a recovery that keeps
  the damaged file aside and logs a warning naming it.

Factories receive exactly ``local(tmp_path)``, ``postgres(url)`` and ``supabase(server, url)``
(``server`` is the :class:`~llm_common_testkit.SupabaseServer`, ``url`` its database), plus any
keyword the test passes to ``new_store(**kwargs)``. Each returns a store, an awaitable of one,
or is an async generator that yields the store and then releases what it built (a Supabase
client the app owns, say); the harness calls ``await store.aclose()`` first.

A check the package cannot pass yet is declared in ``known_gaps={"check id": "why"}``: it then
reports XFAIL with that reason while it fails, and fails loudly ("remove it from known_gaps")
the day it passes. Check ids: ``aclose_idempotent``, ``no_secret``, ``unreachable``,
``corrupt_local_file``, optionally narrowed to a backend: ``unreachable[supabase]``.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import inspect
import logging
import os
import secrets
import socket
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psycopg
import pytest
from psycopg import sql

from ._databases import drop_role
from ._proxy import TcpProxy
from ._urls import replace_url, test_database_url

if TYPE_CHECKING:
    from .postgrest import SupabaseServer

__all__ = [
    "BACKEND_KINDS",
    "CheckEnv",
    "ContractBackend",
    "ContractViolation",
    "GenericStoreContract",
    "StoreContract",
    "check_aclose_idempotent",
    "check_corrupt_local_file",
    "check_hung_database_fails_fast",
    "check_no_secret",
    "check_unreachable",
]

logger = logging.getLogger(__name__)

Kind = Literal["local", "postgres", "supabase"]
_Check = Callable[["ContractBackend"], Awaitable[None]]
BACKEND_KINDS: tuple[Kind, ...] = ("local", "postgres", "supabase")
_REMOTE: tuple[Kind, ...] = ("postgres", "supabase")
_ACLOSE_DEADLINE = 15.0
# Every library whose DEBUG output the secret checks read (psycopg caps its own at WARNING).
_DEBUG_LOGGERS = ("", "psycopg", "psycopg.pool", "httpx", "httpcore", "postgrest", "supabase")


class ContractViolation(AssertionError):
    """A backend broke the contract; the message says which package, backend and rule."""


def _kind_params(kinds: tuple[Kind, ...]) -> list[Any]:
    return [
        kind if kind == "local" else pytest.param(kind, marks=pytest.mark.postgres)
        for kind in kinds
    ]


def _resolve(error: type[BaseException] | str) -> type[BaseException] | None:
    """An error class given directly or as ``"module.Name"``; None if it does not exist yet."""
    if not isinstance(error, str):
        return error
    module_name, _, attr = error.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ContractViolation(f"{error} is not an exception class")
    return found


def _name(error: type[BaseException]) -> str:
    return f"{error.__module__}.{error.__qualname__}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):  # our own wait_for gave up
        return "nothing: the call was still waiting when the check's deadline passed"
    return f"{_name(type(exc))}: {str(exc)[:300]}"


def _require(
    error: type[BaseException] | str, exc: BaseException, what: str, wanted: str = ""
) -> type[BaseException]:
    """The registered error class, if ``exc`` is one; else a violation saying what came."""
    expected = _expected(error, exc, what)
    if not isinstance(exc, expected):
        raise ContractViolation(
            f"{what} raised {_describe(exc)}, expected {_name(expected)}{wanted}"
        ) from exc
    return expected


def _expected(
    error: type[BaseException] | str, exc: BaseException, what: str
) -> type[BaseException]:
    """The registered error class; a clear violation (saying what happened) if it is missing."""
    found = _resolve(error)
    if found is None:
        raise ContractViolation(
            f"{error} does not exist yet (the package must define it, see the testkit README, "
            f"'Add a storage backend'); {what} raised {_describe(exc)}"
        ) from exc
    return found


@dataclass(frozen=True)
class StoreContract:
    """A package's backends, registered once; see the module docstring.

    Attributes:
        package: Distribution name, for messages (``"cost-tracker"``).
        local: ``local(tmp_path, **kw)`` -> store (or awaitable, or async generator).
        postgres: ``postgres(url, **kw)`` -> store.
        supabase: ``supabase(server, url, **kw)`` -> store.
        exercise: ``exercise(store)`` awaits one operation that reads or writes the storage.
        local_file: ``local_file(tmp_path)`` -> the file the local backend keeps its data in.
        unavailable_error: The package's ``StoreUnavailableError`` (class or dotted path).
        corrupt_error: The package's ``StoreCorruptError`` (class or dotted path).
        connect_timeout: The stores' connect timeout (seconds); the unreachable check allows
            ``connect_timeout + 2``.
        known_gaps: ``{check id: reason}`` for checks the package does not pass yet.
    """

    package: str
    local: Callable[..., Any]
    postgres: Callable[..., Any]
    supabase: Callable[..., Any]
    exercise: Callable[[Any], Awaitable[object]]
    local_file: Callable[[Path], Path]
    unavailable_error: type[BaseException] | str
    corrupt_error: type[BaseException] | str
    connect_timeout: float = 5.0
    known_gaps: Mapping[str, str] = field(default_factory=dict)

    def fixtures(self, name: str = "contract_backend") -> tuple[Any, Any]:
        """The two fixtures to assign in ``conftest.py``: the backend and ``store_contract``.

        Example:
            >>> contract_backend, store_contract = CONTRACT.fixtures()  # doctest: +SKIP
        """
        contract = self

        @pytest.fixture(name=name, params=_kind_params(BACKEND_KINDS))
        async def backend(
            request: pytest.FixtureRequest, tmp_path: Path
        ) -> AsyncIterator[ContractBackend]:
            handle = ContractBackend(contract, request.param, CheckEnv(request, tmp_path))
            # Provision now, while fixtures are being set up, not midway through the test.
            if handle.kind != "local":
                handle.env.postgres_url()
            if handle.kind == "supabase":
                handle.env.supabase_server()
            try:
                yield handle
            finally:
                await handle.aclose()

        @pytest.fixture(name="store_contract")
        def registered() -> StoreContract:
            return contract

        return backend, registered

    def gap(self, check: str, kind: str | None = None) -> str | None:
        """The declared reason ``check`` (on ``kind``) is known to fail, or None."""
        if kind is not None and f"{check}[{kind}]" in self.known_gaps:
            return self.known_gaps[f"{check}[{kind}]"]
        return self.known_gaps.get(check)


class CheckEnv:
    """What a backend needs from pytest: a temp dir and the database fixtures, made lazily."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path

    def postgres_url(self) -> str:
        """A private migrated database (the testkit's ``postgres_db``)."""
        return str(self.request.getfixturevalue("postgres_db"))

    def supabase_server(self) -> SupabaseServer:
        """The PostgREST-compatible server over :meth:`postgres_url`'s database."""
        server: SupabaseServer = self.request.getfixturevalue("supabase_server")
        return server

    def sentinel_url(self) -> tuple[str, str]:
        """``(url, password)``: :meth:`postgres_url` logging in as a role with a password."""
        role, password = _sentinel_role()
        return replace_url(self.postgres_url(), user=role, password=password), password

    def tcp_proxy(self) -> TcpProxy:
        """A started proxy in front of the test server (closed at teardown)."""
        proxy: TcpProxy = self.request.getfixturevalue("tcp_proxy")
        return proxy


class _ServerView:
    """A SupabaseServer seen at another URL (to point a client at a dead port)."""

    def __init__(self, server: SupabaseServer, url: str) -> None:
        self._server = server
        self.url = url
        self.rest_url = f"{url}/rest/v1"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class ContractBackend:
    """One backend of one package in one test: builds stores and closes them all at the end.

    Attributes:
        kind: ``local``, ``postgres`` or ``supabase``.
        contract: The package's registration.
        tmp_path: The test's temporary directory (the local backend's files live here).
    """

    def __init__(self, contract: StoreContract, kind: Kind, env: CheckEnv) -> None:
        self.kind = kind
        self.contract = contract
        self.env = env
        self.tmp_path = env.tmp_path
        self._opened: list[tuple[Any, AsyncIterator[Any] | None]] = []

    @property
    def url(self) -> str | None:
        """The owner URL of the database (PostgreSQL and Supabase backends), else None."""
        if self.kind == "local":
            return None
        return (
            self.env.supabase_server().db_url
            if self.kind == "supabase"
            else self.env.postgres_url()
        )

    @property
    def server(self) -> SupabaseServer | None:
        """The PostgREST-compatible server (Supabase backend), else None."""
        return self.env.supabase_server() if self.kind == "supabase" else None

    async def new_store(self, **kwargs: Any) -> Any:
        """A store of this backend on this test's storage; closed at teardown."""
        if self.kind == "local":
            args: tuple[Any, ...] = (self.tmp_path,)
        elif self.kind == "postgres":
            args = (self.env.postgres_url(),)
        else:
            server = self.env.supabase_server()
            args = (server, server.db_url)
        return await self.build(*args, **kwargs)

    async def build(self, *args: Any, **kwargs: Any) -> Any:
        """Call this backend's factory with explicit arguments; the store is closed at teardown."""
        factory = getattr(self.contract, self.kind)
        if inspect.isasyncgenfunction(factory):
            generator: AsyncIterator[Any] = factory(*args, **kwargs)
            store = await anext(generator)
            self._opened.append((store, generator))
            return store
        store = factory(*args, **kwargs)
        if inspect.isawaitable(store):
            store = await store
        self._opened.append((store, None))
        return store

    async def aclose(self) -> None:
        """Close every store (newest first), then finish their factories' generators."""
        opened, self._opened = self._opened, []
        hung: list[str] = []
        for store, generator in reversed(opened):
            try:
                await asyncio.wait_for(store.aclose(), _ACLOSE_DEADLINE)
            except TimeoutError:
                hung.append(repr(store))
            except Exception:  # a second aclose() may fail: check_aclose_idempotent reports it
                logger.debug("aclose() of %r failed at teardown", store, exc_info=True)
            if generator is not None:
                with suppress(StopAsyncIteration):
                    await anext(generator)
        if hung:
            raise ContractViolation(
                f"{self.contract.package} ({self.kind}): aclose() still had not returned after "
                f"{_ACLOSE_DEADLINE:.0f} s for {', '.join(hung)}"
            )


# -- the sentinel role -------------------------------------------------------------------------

_role: list[tuple[str, str]] = []


def _sentinel_role() -> tuple[str, str]:
    """A login role with a password (created once per session, dropped at exit).

    Superuser so it can do whatever the owner does (RLS included); the point is only that the
    URL carries a real password the checks can look for everywhere.
    """
    if _role:
        return _role[0]
    admin = test_database_url()
    # The pid lets a later run drop the role of a crashed one (reap_leftovers).
    name = f"llmc_contract_{os.getpid()}_{secrets.token_hex(4)}"
    password = f"llmc-sentinel-{secrets.token_hex(8)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login superuser password {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    _role.append((name, password))
    atexit.register(drop_role, admin, name)
    return _role[0]


# -- log capture -------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(Exception):
            self.texts.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info and record.exc_info[1] is not None:
            self.texts.append("".join(traceback.format_exception(record.exc_info[1])))


@contextmanager
def _all_logs_at_debug(level: int = logging.DEBUG) -> Iterator[list[str]]:
    """Every log line (of ``level`` or above) while inside, with every library at DEBUG."""
    handler = _Collect()
    handler.setLevel(level)
    saved = {name: logging.getLogger(name).level for name in _DEBUG_LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in _DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler.texts
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _texts_of(exc: BaseException) -> list[str]:
    """An error's message, repr and whole chain as a traceback would print it."""
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the generic checks ------------------------------------------------------------------------


async def check_aclose_idempotent(backend: ContractBackend) -> None:
    """A used store closes, and closing it again is a no-op (no error)."""
    store = await backend.new_store()
    await backend.contract.exercise(store)
    where = f"{backend.contract.package} ({backend.kind})"
    for attempt in ("first", "second"):
        try:
            await store.aclose()
        except Exception as exc:
            raise ContractViolation(
                f"{where}: the {attempt} aclose() raised {type(exc).__name__}: {exc}"
            ) from exc


async def check_no_secret(backend: ContractBackend) -> None:
    """No secret in repr/str, in the errors of an outage, or in any log line at DEBUG."""
    contract = backend.contract
    where = f"{contract.package} ({backend.kind})"
    if backend.kind == "postgres":
        url, password = backend.env.sentinel_url()
        secrets_: dict[str, str] = {"the database password": password}
        build: tuple[Any, ...] = (url,)
        dead: tuple[Any, ...] = (replace_url(url, port=_closed_port()),)
    elif backend.kind == "supabase":
        server = backend.env.supabase_server()
        secrets_ = {
            "the service key": server.service_key,
            "the anon key": server.anon_key,
            "the JWT secret": server.jwt_secret,
        }
        build = (server, server.db_url)
        dead = (_ServerView(server, f"http://127.0.0.1:{_closed_port()}"), server.db_url)
    else:
        raise ContractViolation("the local backend holds no secret: nothing to check")
    texts: list[tuple[str, str]] = []
    with _all_logs_at_debug() as logs:
        store = await backend.build(*build)
        await contract.exercise(store)
        texts += [("repr(store)", repr(store)), ("str(store)", str(store))]
        try:
            broken = await backend.build(*dead)
            texts += [("repr(store)", repr(broken))]
            await asyncio.wait_for(contract.exercise(broken), contract.connect_timeout + 2)
        except Exception as exc:  # any error will do here: its text is what is checked
            texts += [(f"the {type(exc).__name__} of an outage", t) for t in _texts_of(exc)]
    texts += [("a log line", line) for line in logs]
    for what, secret in secrets_.items():
        for source, text in texts:
            if secret in text:
                raise ContractViolation(f"{where}: {what} appears in {source}: {text[:300]!r}")


async def check_unreachable(backend: ContractBackend) -> None:
    """An unreachable database -> the package's StoreUnavailableError within the timeout."""
    contract = backend.contract
    where = f"{contract.package} ({backend.kind})"
    budget = contract.connect_timeout + 2
    dead: tuple[Any, ...] = ()
    store: Any = None
    if backend.kind == "postgres":
        proxy = backend.env.tcp_proxy()
        store = await backend.build(proxy.url_for(backend.env.postgres_url()))
        await contract.exercise(store)  # connected through the proxy first
        proxy.stop()  # live connections cut, new ones refused
        cut = "the database was cut (TcpProxy stopped)"
    elif backend.kind == "supabase":
        server = backend.env.supabase_server()
        dead = (_ServerView(server, f"http://127.0.0.1:{_closed_port()}"), server.db_url)
        store = None
        cut = "the API URL points at a closed port"
    else:
        raise ContractViolation("the local backend has no network to lose")
    started = time.monotonic()
    try:
        if store is None:
            store = await backend.build(*dead)
        await asyncio.wait_for(contract.exercise(store), budget)
    except Exception as exc:
        elapsed = time.monotonic() - started
        expected = _expected(contract.unavailable_error, exc, f"{where}: {cut}")
        if isinstance(exc, expected):
            if elapsed > budget:
                raise ContractViolation(
                    f"{where}: {expected.__name__} came after {elapsed:.1f} s (> {budget:.1f} s)"
                ) from None
            return
        if isinstance(exc, TimeoutError):
            raise ContractViolation(
                f"{where}: {cut}, and the call was still waiting after {budget:.1f} s "
                f"(connect_timeout {contract.connect_timeout} s + 2)"
            ) from None
        raise ContractViolation(
            f"{where}: {cut}; expected {_name(expected)}, got {_describe(exc)}"
        ) from exc
    raise ContractViolation(f"{where}: {cut}, yet the call succeeded (is it really remote?)")


@contextmanager
def _silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung database server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


async def check_hung_database_fails_fast(backend: ContractBackend) -> None:
    """A hung PostgreSQL costs one bounded wait, then calls fail at once (circuit breaker).

    Opt-in (not part of :class:`GenericStoreContract` yet): some stores on main block their
    event loop on a hung server beyond any deadline the harness can set, so a package calls it
    from its own test once its PostgreSQL store sits on ``llm_common_db.PostgresPool``.

    The first call -> the package's StoreUnavailableError within ``connect_timeout + 2`` s;
    the next calls on the same store -> the same error within 1 s each, not one connect wait
    per operation. (A factory that connects eagerly and raises gets rebuilt for each call, and
    then only the bound is checked: a new store has no breaker history.)
    """
    contract = backend.contract
    where = f"{contract.package} ({backend.kind})"
    if backend.kind != "postgres":
        raise ContractViolation("the hung-server check speaks the PostgreSQL protocol only")
    budget = contract.connect_timeout + 2
    store: Any = None
    with _silent_port() as port:
        url = replace_url(backend.env.postgres_url(), host="127.0.0.1", port=port)
        for call in (1, 2, 3):
            allowed = budget if call == 1 or store is None else 1.0
            started = time.monotonic()
            try:
                if store is None:
                    store = await asyncio.wait_for(backend.build(url), budget + 1)
                await asyncio.wait_for(contract.exercise(store), allowed + 1)
            except Exception as exc:
                elapsed = time.monotonic() - started
                why = "connect_timeout + 2" if allowed == budget else "a circuit breaker"
                if isinstance(exc, TimeoutError) and not str(exc):  # our own deadline
                    raise ContractViolation(
                        f"{where}: call {call} to a hung server took {elapsed:.1f} s and was "
                        f"still waiting (allowed {allowed:.1f} s: {why})"
                    ) from None
                _require(contract.unavailable_error, exc, f"{where}: call {call} to a hung server")
                if elapsed > allowed:
                    raise ContractViolation(
                        f"{where}: call {call} to a hung server took {elapsed:.1f} s "
                        f"(allowed {allowed:.1f} s: {why})"
                    ) from None
                continue
            raise ContractViolation(f"{where}: a call to a hung server succeeded")


async def check_corrupt_local_file(backend: ContractBackend) -> None:
    """Garbage in the local backend's file -> either the package's StoreCorruptError naming the
    file, or a recovery that loses nothing: the damaged file kept (moved aside) and a warning
    naming it logged, and the store working again."""
    contract = backend.contract
    where = f"{contract.package} (local)"
    store = await backend.new_store()
    with suppress(Exception):
        await contract.exercise(store)  # creates the file, if the store creates it lazily
    await store.aclose()
    path = contract.local_file(backend.tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    garbage = b"\x00\xffthis is not a database\x13\x37" * 512
    path.write_bytes(garbage)
    names = {str(path), str(path.resolve())}
    try:
        with _all_logs_at_debug(level=logging.WARNING) as warnings:
            again = await backend.new_store()
            await contract.exercise(again)
    except Exception as exc:
        what, wanted = f"{where}: a corrupt {path.name}", " naming the file and how to recover"
        expected = _require(contract.corrupt_error, exc, what, wanted)
        if not any(name in str(exc) for name in names):
            raise ContractViolation(
                f"{where}: {expected.__name__} does not name the file {path}: {exc}"
            ) from None
        return
    kept = [
        p for p in path.parent.rglob("*") if p != path and p.is_file() and p.read_bytes() == garbage
    ]
    if not kept:
        raise ContractViolation(
            f"{where}: no error for garbage in {path}, and it was not kept aside either "
            "(unnoticed, or overwritten: whatever it held is lost)"
        )
    if not any(name in line or path.name in line for line in warnings for name in names):
        raise ContractViolation(
            f"{where}: recovered from a corrupt {path.name} (kept at {kept[0]}) without a "
            "warning naming the file"
        )


async def _run(
    contract: StoreContract, check: str, kind: Kind | None, body: Awaitable[None]
) -> None:
    """Run a check, honouring ``known_gaps`` strictly (XFAIL while failing, FAIL once fixed)."""
    gap = contract.gap(check, kind)
    if gap is None:
        await body
        return
    try:
        await body
    except ContractViolation as exc:
        pytest.xfail(f"known gap in {contract.package}: {gap} ({exc})")
    label = f"{check}[{kind}]" if kind else check
    pytest.fail(
        f"{contract.package} now passes {label!r}: remove it from the known_gaps of its "
        "StoreContract registration (tests/conftest.py)"
    )


class GenericStoreContract:
    """The checks every backend of every package passes; subclass it in a test module.

    Needs the ``store_contract`` fixture from :meth:`StoreContract.fixtures`.
    """

    @pytest.fixture
    async def contract_check(
        self, store_contract: StoreContract, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[Callable[[str, Kind | None, _Check], Awaitable[None]]]:
        """Runs one check on a fresh backend of the registered package; closes it afterwards."""
        opened: list[ContractBackend] = []

        async def run(check_id: str, kind: Kind | None, check: _Check) -> None:
            backend = ContractBackend(store_contract, kind or "local", CheckEnv(request, tmp_path))
            opened.append(backend)
            await _run(store_contract, check_id, kind, check(backend))

        yield run
        for backend in opened:
            await backend.aclose()

    @pytest.mark.parametrize("kind", _kind_params(BACKEND_KINDS))
    async def test_aclose_is_idempotent(self, contract_check: Any, kind: Kind) -> None:
        await contract_check("aclose_idempotent", kind, check_aclose_idempotent)

    @pytest.mark.parametrize("kind", _kind_params(_REMOTE))
    async def test_no_secret_in_repr_errors_or_logs(self, contract_check: Any, kind: Kind) -> None:
        await contract_check("no_secret", kind, check_no_secret)

    @pytest.mark.parametrize("kind", _kind_params(_REMOTE))
    async def test_unreachable_database_is_store_unavailable(
        self, contract_check: Any, kind: Kind
    ) -> None:
        await contract_check("unreachable", kind, check_unreachable)

    async def test_corrupt_local_file_is_store_corrupt(self, contract_check: Any) -> None:
        await contract_check("corrupt_local_file", None, check_corrupt_local_file)
