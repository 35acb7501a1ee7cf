"""Release tooling: per-package isolation matrix, wheel smoke tests, private-index round trip.

Run from the repository root (stdlib only, so it needs nothing but uv on PATH):

    uv run python scripts/release.py matrix [NAME ...]  # each package's tests in its own env
    uv run python scripts/release.py smoke [NAME ...]   # wheels installed alone, import, --help
    uv run python scripts/release.py index-roundtrip    # publish to a private index, consume it
    uv run python scripts/release.py sizes              # install size: chat app vs full stack
    uv run python scripts/release.py check              # smoke + matrix + index round trip
    uv run python scripts/release.py release NAME --index private [--dry-run]

Third-party versions in every throwaway environment are constrained to the ones in uv.lock, so
these checks are as reproducible as the workspace itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES: dict[str, str] = {
    "llm-client": "llm_client",
    "web-search": "web_search",
    "cost-tracker": "cost_tracker",
    "conversation-memory": "conversation_memory",
    "analysis-pipeline": "analysis_pipeline",
}
CHAT_APP = ("llm-client", "conversation-memory")
NOT_IN_CHAT_APP = ("web-search", "cost-tracker", "analysis-pipeline")


def log(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def run(cmd: Sequence[str | os.PathLike[str]], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command, echoing it; raise with its output on failure."""
    print("   $", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def package_version(name: str) -> str:
    data = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())
    return str(data["project"]["version"])


def package_extras(name: str) -> list[str]:
    data = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())
    return sorted(data["project"].get("optional-dependencies", {}))


def package_scripts(name: str) -> list[str]:
    data = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())
    return sorted(data["project"].get("scripts", {}))


def constraints_file(tmp: Path) -> Path:
    """Third-party pins from uv.lock, so throwaway envs match the workspace."""
    out = tmp / "constraints.txt"
    run(
        [
            "uv",
            "export",
            "--frozen",
            "--all-packages",
            "--all-extras",
            "--no-hashes",
            "--no-emit-workspace",
            "--no-header",
            "--no-annotate",
            "-o",
            out,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return out


# --- matrix -------------------------------------------------------------------------------------
# Packages whose tests run in more than one environment: (label, sync flags, pytest flags).
# llm-client's [litellm] extra is optional: its tests run without LiteLLM installed (the
# tests marked `litellm` are deselected there, and the leg checks LiteLLM really is absent),
# then with it (everything).
Leg = tuple[str, list[str], list[str]]
LEGS: dict[str, list[Leg]] = {
    "llm-client": [
        ("without [litellm]", ["--all-extras", "--no-extra", "litellm"], ["-m", "not litellm"]),
        ("with [litellm]", ["--all-extras"], []),
    ],
}
_DEFAULT_LEG: list[Leg] = [("", ["--all-extras"], [])]
_ABSENT = "import importlib.util as u, sys; sys.exit(u.find_spec('litellm') is not None)"


def cmd_matrix(names: Sequence[str]) -> None:
    """Each package's own tests in an environment holding only it, its deps and its test group."""
    for name in names or PACKAGES:
        for label, sync_flags, pytest_flags in LEGS.get(name, _DEFAULT_LEG):
            env_dir = Path(tempfile.mkdtemp(prefix=f"matrix-{name}-"))
            try:
                log(f"matrix: {name} in a fresh environment {label}".rstrip())
                env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(env_dir)}
                sync = ["uv", "sync", "--frozen", "--package", name, *sync_flags]
                run([*sync, "--no-default-groups", "--group", "test", "--quiet"], cwd=ROOT, env=env)
                python = str(env_dir / "bin" / "python")
                if "--no-extra" in sync_flags:  # the leg means nothing if LiteLLM crept in
                    run([python, "-c", _ABSENT], cwd=ROOT, env=env)
                pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                run([*pytest, *pytest_flags, f"packages/{name}/tests"], cwd=ROOT, env=env)
            finally:
                shutil.rmtree(env_dir, ignore_errors=True)


# --- smoke --------------------------------------------------------------------------------------
def build_all(dist: Path, names: Sequence[str]) -> None:
    for name in names:
        run(
            ["uv", "build", "--package", name, "--no-sources", "--out-dir", dist, "--quiet"],
            cwd=ROOT,
        )


def wheel_for(dist: Path, name: str) -> Path:
    stem = name.replace("-", "_")
    wheels = sorted(dist.glob(f"{stem}-{package_version(name)}-*.whl"))
    if not wheels:
        raise SystemExit(f"no wheel for {name} in {dist}")
    return wheels[-1]


def cmd_smoke(names: Sequence[str]) -> None:
    """Build every wheel, install each alone (siblings from the built wheels), import it, --help."""
    names = list(names or PACKAGES)
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp_s:
        tmp = Path(tmp_s)
        dist = tmp / "dist"
        log("building wheels (uv build --no-sources)")
        build_all(dist, [*PACKAGES, "llm-common-db"])  # the [postgres] extras need it
        constraints = constraints_file(tmp)
        for name in names:
            log(f"smoke: {name} alone in a fresh venv")
            venv = tmp / f"venv-{name}"
            run(["uv", "venv", "--quiet", "--python", sys.executable, venv])
            py = venv / "bin" / "python"
            run(
                [
                    "uv",
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    py,
                    "--find-links",
                    dist,
                    "--constraint",
                    constraints,
                    wheel_for(dist, name),
                ]
            )
            mod = PACKAGES[name]
            run([py, "-c", f"import {mod}; print('{name}', {mod}.__version__)"])
            for script in package_scripts(name):
                run([venv / "bin" / script, "--help"], stdout=subprocess.DEVNULL)


# --- private index round trip --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_index(tmp: Path, user: str, password: str) -> Iterator[str]:
    """A pypiserver on loopback with authentication on upload, download and listing."""
    from passlib.apache import HtpasswdFile  # release group dependency

    pkgs = tmp / "index-packages"
    pkgs.mkdir()
    htpasswd = tmp / "htpasswd"
    ht = HtpasswdFile(str(htpasswd), new=True)
    ht.set_password(user, password)
    ht.save()
    port = free_port()
    server_bin = Path(sys.executable).parent / "pypi-server"
    proc = subprocess.Popen(
        [
            str(server_bin),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--passwords",
            str(htpasswd),
            "--authenticate",
            "update,download,list",
            "--disable-fallback",
            str(pkgs),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("pypiserver did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


CHAT_SNIPPET = """
import asyncio, tempfile
from llm_client import LLMClient
from conversation_memory import ConversationMemory, LocalMessageStore

async def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        store = LocalMessageStore(f"{d}/chat.sqlite3")
        memory = ConversationMemory(store, user_id="00000000-0000-4000-8000-000000000001")
        await memory.save_message("user", "What is a Roth IRA?")
        async with LLMClient() as llm:
            reply = await llm.chat(await memory.get_context(), model="test")
        await memory.save_message("assistant", reply)
        print("chat app ok:", len(await memory.history()), "messages")

asyncio.run(main())
"""


def cmd_index_roundtrip() -> None:
    """Publish the chat-app packages to a private index, then consume them from a fresh app."""
    user, password = "ci-publisher", "s3cret-" + os.urandom(6).hex()
    with tempfile.TemporaryDirectory(prefix="index-") as tmp_s:
        tmp = Path(tmp_s)
        dist = tmp / "dist"
        build_all(dist, CHAT_APP)
        with private_index(tmp, user, password) as url:
            log(f"publishing {', '.join(CHAT_APP)} to the private index at {url}")
            env = {**os.environ, "UV_PUBLISH_USERNAME": user, "UV_PUBLISH_PASSWORD": password}
            files = [p for n in CHAT_APP for p in dist.glob(f"{n.replace('-', '_')}-*")]
            run(["uv", "publish", "--publish-url", f"{url}/", *files], env=env)

            log("consuming them from a fresh app outside the workspace")
            app = tmp / "chat-app"
            run(["uv", "init", "--quiet", "--bare", "--no-workspace", "--name", "chat-app", app])
            app_env = {
                **os.environ,
                "UV_INDEX_PRIVATE_USERNAME": user,
                "UV_INDEX_PRIVATE_PASSWORD": password,
            }
            app_env.pop("VIRTUAL_ENV", None)
            run(
                [
                    "uv",
                    "add",
                    "--quiet",
                    "--directory",
                    app,
                    "--index",
                    f"private={url}/simple/",
                    *CHAT_APP,
                ],
                env=app_env,
            )
            lock = (app / "uv.lock").read_text()
            for name in CHAT_APP:
                if f'name = "{name}"' not in lock:
                    raise SystemExit(f"{name} missing from the app's lock")
            pulled = [n for n in NOT_IN_CHAT_APP if f'name = "{n}"' in lock]
            if pulled:
                raise SystemExit(f"the chat app pulled in {pulled}")
            if password in lock or password in (app / "pyproject.toml").read_text():
                raise SystemExit("the index password leaked into the app's files")
            (app / "snippet.py").write_text(CHAT_SNIPPET)
            run(["uv", "run", "--quiet", "--directory", app, "python", "snippet.py"], env=app_env)
    log("private index round trip ok")


# --- sizes --------------------------------------------------------------------------------------
def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


CHAT_APP_LIMIT_MIB = 80
"""Issue 14: the chat app (llm-client + conversation-memory) installs in at most this much."""


def cmd_sizes() -> dict[str, int]:
    """Install size of the chat app vs the full stack (without and with [litellm]), from wheels.

    Exits non-zero when the chat app is over ``CHAT_APP_LIMIT_MIB``.
    """
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="sizes-") as tmp_s:
        tmp = Path(tmp_s)
        dist = tmp / "dist"
        build_all(dist, [*PACKAGES, "llm-common-db"])  # the [postgres] extras need it
        constraints = constraints_file(tmp)

        def stores(name: str) -> list[str]:
            return [e for e in package_extras(name) if e in ("postgres", "supabase")]

        def with_extras(name: str, extras: Sequence[str]) -> str:
            wheel = str(wheel_for(dist, name))
            return f"{wheel}[{','.join(extras)}]" if extras else wheel

        combos = {
            "chat app (llm-client + conversation-memory)": [with_extras(n, []) for n in CHAT_APP],
            "full stack (all five, postgres/supabase extras)": [
                with_extras(n, stores(n)) for n in PACKAGES
            ],
            "full stack + llm-client[litellm]": [
                with_extras(n, [*stores(n), *(["litellm"] if n == "llm-client" else [])])
                for n in PACKAGES
            ],
        }
        for label, reqs in combos.items():
            venv = tmp / re.sub(r"\W+", "-", label)
            run(["uv", "venv", "--quiet", "--python", sys.executable, venv])
            run(
                [
                    "uv",
                    "pip",
                    "install",
                    "--quiet",
                    "--compile-bytecode",  # as pip does, whatever UV_COMPILE_BYTECODE says
                    "--python",
                    venv / "bin" / "python",
                    "--find-links",
                    dist,
                    "--constraint",
                    constraints,
                    *reqs,
                ]
            )
            site = next((venv / "lib").glob("python*/site-packages"))
            sizes[label] = dir_size(site)
    for label, size in sizes.items():
        print(f"{label}: {size / 2**20:.1f} MiB")
    chat = sizes["chat app (llm-client + conversation-memory)"] / 2**20
    if chat > CHAT_APP_LIMIT_MIB:
        raise SystemExit(f"chat app is {chat:.1f} MiB, over the {CHAT_APP_LIMIT_MIB} MiB target")
    print(f"chat app within {CHAT_APP_LIMIT_MIB} MiB: ok")
    return sizes


# --- release ------------------------------------------------------------------------------------
def changelog_top_release(name: str) -> str | None:
    text = (ROOT / "packages" / name / "CHANGELOG.md").read_text()
    m = re.search(r"^## \[(\d+\.\d+\.\d+[^\]]*)\]", text, flags=re.M)
    return m.group(1) if m else None


def cmd_release(name: str, index: str, dry_run: bool) -> None:
    """Build, smoke-install, publish NAME to INDEX and tag NAME==VERSION with notes."""
    version = package_version(name)
    if changelog_top_release(name) != version:
        raise SystemExit(f"{name}: CHANGELOG's top release is not {version}")
    tag = f"{name}=={version}"
    if run(["git", "tag", "--list", tag], cwd=ROOT, capture_output=True).stdout.strip():
        raise SystemExit(
            f"tag {tag} already exists: bump with `uv version --package {name} --bump ...`"
        )
    cmd_smoke([name])
    prev = run(
        ["git", "tag", "--list", f"{name}==*", "--sort=-v:refname"], cwd=ROOT, capture_output=True
    ).stdout.split()
    rng = f"{prev[0]}..HEAD" if prev else "HEAD"
    notes = run(
        ["git", "log", "--format=- %s", rng, "--", f"packages/{name}"],
        cwd=ROOT,
        capture_output=True,
    ).stdout
    print(f"release notes for {tag}:\n{notes}")
    if dry_run:
        log("dry run: not publishing or tagging")
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(["uv", "build", "--package", name, "--no-sources", "--out-dir", tmp], cwd=ROOT)
        run(["uv", "publish", "--index", index, *Path(tmp).iterdir()], cwd=ROOT)
    run(["git", "tag", "-a", tag, "-m", f"{tag}\n\n{notes}"], cwd=ROOT)
    log(f"released {tag}; push the tag with `git push origin {tag}`")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for c in ("matrix", "smoke"):
        sub.add_parser(c).add_argument("names", nargs="*", metavar="NAME")
    sub.add_parser("index-roundtrip")
    sub.add_parser("sizes")
    sub.add_parser("check")
    rel = sub.add_parser("release")
    rel.add_argument("name", choices=list(PACKAGES))
    rel.add_argument("--index", default="private")
    rel.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    unknown = [n for n in getattr(args, "names", []) if n not in PACKAGES]
    if unknown:
        parser.error(f"unknown package(s) {unknown}; choose from {list(PACKAGES)}")
    if args.cmd == "matrix":
        cmd_matrix(args.names)
    elif args.cmd == "smoke":
        cmd_smoke(args.names)
    elif args.cmd == "index-roundtrip":
        cmd_index_roundtrip()
    elif args.cmd == "sizes":
        cmd_sizes()
    elif args.cmd == "check":
        cmd_smoke([])
        cmd_matrix([])
        cmd_index_roundtrip()
    else:
        cmd_release(args.name, args.index, args.dry_run)


if __name__ == "__main__":
    main()
