"""Every publishable package carries complete, consistent metadata (versions, deps, extras)."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "llm-client": "llm_client",
    "web-search": "web_search",
    "cost-tracker": "cost_tracker",
    "conversation-memory": "conversation_memory",
    "analysis-pipeline": "analysis_pipeline",
}
ALLOWED_SIBLINGS = {
    "llm-client": set(),
    "web-search": set(),
    "cost-tracker": set(),
    "conversation-memory": {"llm-client"},
    "analysis-pipeline": {"llm-client", "web-search", "cost-tracker"},
}


def pyproject(name: str) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())


@pytest.mark.parametrize("name", PACKAGES)
def test_changelog_top_release_matches_version(name: str) -> None:
    version = pyproject(name)["project"]["version"]
    text = (ROOT / "packages" / name / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert headings[0] == "Unreleased", "Keep a Changelog: [Unreleased] stays on top"
    released = [h for h in headings if h != "Unreleased"]
    assert released, f"{name}: no released version in CHANGELOG.md"
    assert released[0] == version, f"{name}: CHANGELOG top release {released[0]} != {version}"


@pytest.mark.parametrize("name", PACKAGES)
def test_version_comes_from_installed_metadata(name: str) -> None:
    module = importlib.import_module(PACKAGES[name])
    assert module.__version__ == importlib.metadata.version(name)
    assert module.__version__ == pyproject(name)["project"]["version"]


@pytest.mark.parametrize("name", PACKAGES)
def test_metadata_is_complete(name: str) -> None:
    project = pyproject(name)["project"]
    for key in ("description", "readme", "license", "classifiers", "urls", "requires-python"):
        assert project.get(key), f"{name}: missing {key}"
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "packages" / name / "src" / PACKAGES[name] / "py.typed").is_file()
    readme = (ROOT / "packages" / name / project["readme"]).read_text()
    assert f"uv add {name}" in readme or "uv add" in readme, f"{name}: README lacks an install line"


@pytest.mark.parametrize("name", PACKAGES)
def test_sibling_dependencies_are_capped_ranges_from_the_workspace(name: str) -> None:
    data = pyproject(name)
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    siblings = {r.name: r for r in reqs if r.name in PACKAGES}
    assert set(siblings) == ALLOWED_SIBLINGS[name], "dependency direction of SPEC.md"
    sources = data.get("tool", {}).get("uv", {}).get("sources", {})
    for sib, req in siblings.items():
        sib_version = pyproject(sib)["project"]["version"]
        assert req.specifier.contains(sib_version), f"{name} does not accept {sib} {sib_version}"
        upper = [s for s in req.specifier if s.operator == "<"]
        assert upper, f"{name}: {sib} must be capped at the next breaking version"
        assert sources.get(sib) == {"workspace": True}, f"{name}: {sib} not from the workspace"


def test_litellm_is_an_extra_that_excludes_the_compromised_releases() -> None:
    project = pyproject("llm-client")["project"]
    assert not [r for r in project["dependencies"] if Requirement(r).name == "litellm"]
    req = next(
        Requirement(r)
        for r in project["optional-dependencies"]["litellm"]
        if r.startswith("litellm")
    )
    for bad in ("1.82.7", "1.82.8", "1.107.0", "1.107.5", "1.107.12"):
        assert not req.specifier.contains(bad), bad
    installed = importlib.metadata.version("litellm")
    assert req.specifier.contains(installed)
