"""manifest.yml is a Forge app Atlassian's own rules accept, and every route it names is one this service answers."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from plugin.app import create_app
from plugin.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
CHECK = ROOT / "tools" / "forge-check"
PAGES = ROOT / "forge-ui"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: manifest.yml is checked with "
                                                     "@forge/manifest, a Node.js package (tools/forge-check)")


def _npm(folder: Path, *args: str) -> None:
    subprocess.run(["npm", *args], cwd=folder, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def forge_check() -> Path:
    """tools/forge-check with its pinned packages, and the pages' bundle the manifest's resource points at
    (scripts/setup.sh --test makes both; a test run without it makes them here)."""
    if not (CHECK / "node_modules").is_dir():
        _npm(CHECK, "ci", "--no-audit", "--no-fund")
    if not (PAGES / "build" / "index.html").is_file():
        if not (PAGES / "node_modules").is_dir():
            _npm(PAGES, "ci", "--no-audit", "--no-fund")
        _npm(PAGES, "run", "build")
    return CHECK / "check.js"


def check(script: Path, manifest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NODE), str(script), str(manifest)], capture_output=True, text=True, timeout=120,
                          check=False)


@needs_node
def test_the_manifest_passes_atlassians_validation(forge_check):
    result = check(forge_check, MANIFEST)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("valid Forge manifest")


@needs_node
def test_a_manifest_asking_for_an_unknown_scope_fails_with_its_line(forge_check, tmp_path):
    broken = tmp_path / "manifest.yml"
    broken.write_text(MANIFEST.read_text().replace("- read:app-system-token", "- read:app-system-tokens"))
    shutil.copytree(PAGES / "build", tmp_path / "forge-ui" / "build")

    result = check(forge_check, broken)

    assert result.returncode == 1
    [problem] = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert "read:app-system-tokens" in problem and re.match(rf"{re.escape(str(broken))}:\d+:\d+: error", problem)


def test_every_route_the_manifest_and_the_pages_name_is_served(settings):
    manifest = yaml.safe_load(MANIFEST.read_text())
    routes = {rule.rule: rule.methods or set() for rule in create_app(Runtime(settings)).url_map.iter_rules()}
    event_paths = [e["route"]["path"] for e in manifest["modules"]["endpoint"] if "route" in e]
    page_paths = re.findall(r"'(/forge/ui/[a-z]+)'", (PAGES / "src" / "main.js").read_text())

    assert event_paths and page_paths
    assert all("POST" in routes.get(path, ()) for path in event_paths), (event_paths, routes)
    assert all("GET" in routes.get(path, ()) for path in page_paths), (page_paths, routes)
    pages = manifest["modules"]["jira:adminPage"] + manifest["modules"]["jira:projectSettingsPage"]
    ui_endpoints = {page["resolver"]["endpoint"] for page in pages}
    assert ui_endpoints <= {e["key"] for e in manifest["modules"]["endpoint"] if "route" not in e}

