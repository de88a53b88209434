"""infra/ is safe to build, read from its files (there is no Docker engine here):

- the build context (docker-compose's `build.context`, filtered by the ignore file Docker uses for it) can
  hold neither infra/.env, nor .venv, var/, .git or caches: the ignore patterns are evaluated with Docker's
  own rules (moby/patternmatcher, ported below and checked against cases of its test suite), on probe paths
  and on the real checkout;
- no COPY/ADD of infra/Dockerfile can bring them into the image, and every COPY source is in the context
  (the build does not break on a file the ignore file leaves out);
- every image (compose `image:`, Dockerfile `FROM`) is pinned to a release or a digest; never `latest`;
- the served deployment (flows/serve.py) and the worker deployment (infra/prefect.yaml) have different names;
- compose runs the server-side failure alert (flows/automations.py) once the server is healthy.
"""

from __future__ import annotations

import inspect
import os
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
COMPOSE_FILE = INFRA / "docker-compose.yml"

# What must never enter the build context, nor the image (paths from the context root).
FORBIDDEN_ROOTS = (".venv", "var", ".git", ".pytest_cache", ".ruff_cache", ".hypothesis", ".mypy_cache")
SECRET_FILES = ("infra/.env",)


# --- Docker's ignore-file rules (moby/patternmatcher + ignorefile), in Python ---------------------------

@dataclass
class _Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool  # a "!" pattern: lets back in what an earlier pattern left out
    kind: str = ""
    regex: re.Pattern | None = None

    def __post_init__(self):
        self._compile()

    def _compile(self) -> None:
        out, kind, p, i = "^", "exact", self.text, 0
        while i < len(p):
            ch = p[i]
            if ch == "*":
                if i + 1 < len(p) and p[i + 1] == "*":  # "**"
                    i += 1
                    if i + 1 < len(p) and p[i + 1] == "/":  # "**/" is "**"
                        i += 1
                    if i + 1 >= len(p):  # "**" at the end: anything
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            out, kind = out + ".*", "regexp"
                    else:  # any number of folders, even none
                        out, kind = out + "(.*/)?", "regexp"
                    if i <= 2 and p.startswith("**"):  # the pattern starts with "**"
                        kind = "suffix"
                else:
                    out, kind = out + "[^/]*", "regexp"
            elif ch == "?":
                out, kind = out + "[^/]", "regexp"
            elif ch in ".+()|{}$":
                out += "\\" + ch
            elif ch == "\\":
                if i + 1 < len(p):
                    i += 1
                    out, kind = out + "\\" + p[i], "regexp"
                else:
                    out += "\\\\"
            elif ch in "[]":
                out, kind = out + ch, "regexp"
            else:
                out += ch
            i += 1
        self.kind = kind
        self.regex = re.compile(out + "$") if kind == "regexp" else None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        return bool(self.regex.match(path))


class DockerIgnore:
    """An ignore file as Docker (BuildKit) reads it: comments and blank lines dropped, each pattern trimmed
    and cleaned (a leading "/" removed); a path is left out when the last pattern matching it or one of its
    parent folders is not a "!" pattern."""

    def __init__(self, text: str):
        self.patterns: list[_Pattern] = []
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            line = line.strip()
            if not line:
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            line = posixpath.normpath(line) if line else line
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/")
            if not line:
                raise ValueError('illegal exclusion pattern: "!"')
            self.patterns.append(_Pattern(line, exclusion))

    def excluded(self, path: str) -> bool:
        path = posixpath.normpath(path)
        if path == ".":
            return False
        parents = posixpath.dirname(path).split("/") if "/" in path else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:  # an exclusion only matters once matched, and vice versa
                continue
            hit = pattern.match(path)
            if not hit:
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


# Cases of moby/patternmatcher's own tests (pattern(s), path, left out?): our port must agree with Docker.
MOBY_CASES = [
    (["*"], "fileutils.go", True), (["*.go"], "fileutils.go", True),
    (["!fileutils.go", "*.go"], "fileutils.go", True), (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False), (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["**"], "dir/file", True), (["dir/**"], "dir/dir2/file", True), (["**/dir"], "dir", True),
    (["**/dir"], "dir/file", True), (["**/dir2/*"], "dir/dir2/file", True), (["**file"], "dir/dir/file", True),
    (["**/file*.txt"], "dir/dir/file.txt", True), (["**/**/*.txt2"], "dir/dir/file.txt", False),
    (["**/*.txt"], "file.txt", True), (["a**/*.txt"], "a/dir/dir/file.txt", True),
    (["a/*.txt"], "a/dir/file.txt", False), (["a[b-d]e"], "ace", True), (["a[^b-d]e"], "aze", True),
    ([".*"], ".foo", True), ([".*"], "foo", False), (["abc.def"], "abcdef", False), (["abc?def"], "abcZdef", True),
    (["**/foo/bar"], "dir/dir2/foo/bar", True), (["abc/**"], "abc", False), (["abc/**"], "abc/def/ghi", True),
    (["**/.foo"], "bar.foo", False), (["a(b)c/def"], "a(b)c/def", True),
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
]


@pytest.mark.parametrize(("patterns", "path", "left_out"), MOBY_CASES)
def test_docker_ignore_port_agrees_with_moby_patternmatcher(patterns, path, left_out):
    assert DockerIgnore("\n".join(patterns)).excluded(path) is left_out


# --- the files ----------------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@dataclass
class Build:
    context: Path
    dockerfile: Path
    image: str


def builds() -> list[Build]:
    out = []
    for service in compose()["services"].values():
        build = service.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = (INFRA / build.get("context", ".")).resolve()
        out.append(Build(context, (context / build.get("dockerfile", "Dockerfile")).resolve(), service.get("image")))
    return out


def ignore_file(build: Build) -> Path:
    """BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile if there is one, else the context's
    .dockerignore."""
    specific = build.dockerfile.with_name(build.dockerfile.name + ".dockerignore")
    return specific if specific.exists() else build.context / ".dockerignore"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, current = [], ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


def copy_sources(dockerfile: Path) -> list[str]:
    """Every COPY/ADD source taken from the build context (not `--from` another stage or image)."""
    sources = []
    for keyword, args in instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        if args.startswith("["):
            import json

            words = json.loads(args)
        else:
            words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        assert len(paths) >= 2, (keyword, args)
        sources += paths[:-1]
    return sources


def context_files(build: Build, ignore: DockerIgnore) -> list[str]:
    """The files of the checkout that enter the build context. A folder left out is skipped (not walked)
    only when no "!" pattern could let back in anything below it: then nothing below it enters."""
    reentries = [p.text for p in ignore.patterns if p.exclusion]
    kept = []
    for root, dirs, files in os.walk(build.context):
        rel_root = os.path.relpath(root, build.context)
        rel_root = "" if rel_root == "." else rel_root + "/"
        for d in list(dirs):
            rel = rel_root + d
            if ignore.excluded(rel) and not any(r.startswith(rel + "/") for r in reentries):
                dirs.remove(d)
        kept += [rel_root + f for f in files if not ignore.excluded(rel_root + f)]
    return kept


@pytest.fixture(scope="module")
def build() -> Build:
    (only,) = builds()
    return only


@pytest.fixture(scope="module")
def ignore(build) -> DockerIgnore:
    path = ignore_file(build)
    assert path.is_file(), f"no ignore file for the build context {build.context}: add {path}"
    return DockerIgnore(path.read_text())


def test_the_build_context_is_the_repository_root_with_the_infra_dockerfile(build):
    assert build.context == REPO and build.dockerfile == INFRA / "Dockerfile"
    assert ignore_file(build) == REPO / ".dockerignore"


PROBES = [
    "infra/.env", ".venv", ".venv/bin/python", ".venv/lib/python3.11/site-packages/eujp/__init__.py",
    ".venv/requirements.lock", "var", "var/warehouse.duckdb", "var/warehouse.duckdb.lock",
    "var/staging/20261124T060000Z-1a2b3c.duckdb", "var/objectstore/latest.json", "var/eujp/config.py",
    "var/flows/daily.py", ".git", ".git/config", ".git/objects/ab/cdef", ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.6.0/123", ".hypothesis/examples/x", "eujp/__pycache__/config.cpython-311.pyc",
    "flows/__pycache__/daily.cpython-311.pyc", "eujp/.env", "flows/.env", "eujp/var/x", "eujp/.venv/x",
    "data/snapshot/.env", "tests/conftest.py", "docs/operations.md", "bi/x.sql",
]


def test_secrets_venv_var_git_and_caches_cannot_enter_the_build_context(ignore):
    admitted = [p for p in PROBES if not ignore.excluded(p)]
    assert admitted == [], f"the ignore file lets these into the build context: {admitted}"
    # A proof, not only probes: anything below a forbidden folder could only come back through a "!"
    # pattern; every "!" pattern is a literal path (no wildcard) outside those folders and never a .env.
    for p in (p for p in ignore.patterns if p.exclusion):
        assert p.kind == "exact", f"'!{p.text}': re-admit literal paths only"
        first = p.text.split("/")[0]
        assert first not in FORBIDDEN_ROOTS, f"'!{p.text}' re-admits part of {first}/"
        assert ".env" not in p.text.split("/")[-1], f"'!{p.text}' re-admits an env file"
        assert p.text not in ("infra",) and not any(s.startswith(p.text + "/") for s in SECRET_FILES), p.text


def test_the_checkout_files_in_the_context_are_only_what_the_image_copies(build, ignore):
    files = context_files(build, ignore)
    assert files, "an empty build context"
    bad = [f for f in files if f.split("/")[0] in FORBIDDEN_ROOTS or f in SECRET_FILES
           or f.split("/")[-1].startswith(".env") or "__pycache__" in f.split("/")]
    assert bad == [], bad
    sources = [posixpath.normpath(s) for s in copy_sources(build.dockerfile)]
    uncopied = [f for f in files if not any(f == s or f.startswith(s + "/") for s in sources)]
    assert uncopied == [], f"in the build context but copied by no COPY (leave them out): {uncopied}"


def test_no_copy_can_bring_secrets_venv_or_var_into_the_image(build, ignore):
    sources = copy_sources(build.dockerfile)
    assert sources
    for source in sources:
        norm = posixpath.normpath(source)
        assert not any(ch in norm for ch in "*?["), f"COPY {source}: name files, no wildcards"
        assert norm not in (".", "") and not norm.startswith(("..", "/")), f"COPY {source}: the whole context"
        for forbidden in (*FORBIDDEN_ROOTS, *SECRET_FILES):
            assert not (forbidden == norm or forbidden.startswith(norm + "/") or norm.startswith(forbidden + "/")), \
                f"COPY {source} would copy {forbidden}"
        # and the source is in the context: the build cannot fail on a file the ignore file leaves out
        path = build.context / norm
        assert path.exists(), f"COPY {source}: no such file in the checkout"
        if path.is_file():
            assert not ignore.excluded(norm), f"COPY {source}: left out by the ignore file"
        else:
            inside = [f for f in context_files(build, ignore) if f.startswith(norm + "/")]
            assert inside, f"COPY {source}: everything in it is left out by the ignore file"
    from_infra = {posixpath.normpath(s) for s in sources if posixpath.normpath(s).split("/")[0] == "infra"}
    assert from_infra == {"infra/prefect.yaml"}, from_infra
    assert not [args for _, args in instructions(build.dockerfile) if ".env" in args]  # not even by name


# --- pinned images ------------------------------------------------------------------------------------

_RELEASE = re.compile(r"^RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ")  # MinIO's release tags
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+")  # x.y.z: prefect 3.9.1-python3.11, python 3.11.14-slim-bookworm
_TWO_PART = re.compile(r"^\d{2,}\.\d+(?:$|[^.\d])")  # a full release where the major has 2+ digits: PostgreSQL 16.13


def pinned(image: str) -> bool:
    """An image reference fixed to one release: a digest, or a tag naming a complete version."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False  # no tag: latest
    tag = last.split(":", 1)[1]
    if "latest" in tag.lower():
        return False
    return bool(_RELEASE.match(tag) or _SEMVER.match(tag) or _TWO_PART.match(tag))


@pytest.mark.parametrize(("image", "ok"), [
    ("postgres:16-alpine", False), ("postgres:16.13-alpine", True), ("minio/minio:latest", False),
    ("quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z", True), ("python:3.11-slim", False),
    ("python:3.11.14-slim-bookworm", True), ("prefecthq/prefect:3-latest", False),
    ("prefecthq/prefect:3.9.1-python3.11", True), ("postgres", False), ("localhost:5000/x", False),
    ("postgres@sha256:" + "a" * 64, True),
])
def test_pinned_rule(image, ok):
    assert pinned(image) is ok


def test_every_compose_image_and_dockerfile_from_is_pinned(build):
    services = compose()["services"]
    built = {b.image for b in builds()}
    unpinned = [f"{name}: {s['image']}" for name, s in services.items()
                if "image" in s and s["image"] not in built and not pinned(s["image"])]
    froms = [_from_image(args) for keyword, args in instructions(build.dockerfile) if keyword == "FROM"]
    stages = {args.split()[-1].lower() for keyword, args in instructions(build.dockerfile)
              if keyword == "FROM" and " as " in args.lower()}
    unpinned += [f"FROM {image}" for image in froms if image.lower() not in stages and image != "scratch"
                 and not pinned(image)]
    assert unpinned == [], unpinned
    # the image built here is never pulled: every service that uses it is built from this Dockerfile
    for name, s in services.items():
        if s.get("image") in built:
            assert "latest" not in s["image"], f"{name}: name the local image by something else than latest"


def _from_image(args: str) -> str:
    words = [w for w in args.split() if not w.startswith("--")]
    return words[0]


def test_prefect_server_image_is_the_locked_prefect_on_the_image_python(build):
    locked = re.search(r"^prefect==([\w.]+)", (REPO / "requirements.lock").read_text(), re.MULTILINE).group(1)
    server = compose()["services"]["prefect-server"]["image"]
    final_stage = [a for k, a in instructions(build.dockerfile) if k == "FROM"][-1]  # the image's own stage
    python = re.match(r"python:(\d+\.\d+)\.", _from_image(final_stage)).group(1)
    # the tag Prefect's own code names its images by (prefect.utilities.dockerutils.get_prefect_image_name)
    assert server == f"prefecthq/prefect:{locked}-python{python}", server
    assert yaml.safe_load((INFRA / "prefect.yaml").read_text())["prefect-version"] == locked


# --- deployments and alerts ---------------------------------------------------------------------------

def test_served_and_worker_deployments_have_different_names():
    from flows import serve

    worker_names = [d["name"] for d in worker_deployments().values()]
    served = serve.daily_deployment()
    assert served.name == serve.DEFAULT_NAME == "served"
    assert set(worker_names) == {serve.WORKER_NAME} == {"worker"}
    assert served.name not in worker_names
    assert serve.maintenance_deployment().name == served.name  # eujp-lake-maintain/served vs .../worker
    assert served.flow_name == "eujp-daily"  # both are eujp-daily/<name>: only the name tells them apart
    with pytest.raises(ValueError, match="worker"):
        serve.daily_deployment(name=serve.WORKER_NAME)


def worker_deployments() -> dict[str, dict]:
    """infra/prefect.yaml's deployments by the name of the flow their entrypoint loads."""
    from prefect.flows import load_flow_from_entrypoint

    out = {}
    for d in yaml.safe_load((INFRA / "prefect.yaml").read_text())["deployments"]:
        path, _, attr = d["entrypoint"].partition(":")
        out[load_flow_from_entrypoint(f"{REPO / path}:{attr}").name] = d
    return out


def test_the_worker_stack_runs_the_lake_maintenance_beside_the_daily_flow(monkeypatch):
    """`eujp serve` serves eujp-lake-maintain on its own schedule; the worker stack (compose) registered only
    eujp-daily/worker, so its lake's snapshots were never expired nor its files deleted."""
    from flows import serve

    monkeypatch.delenv(serve.MAINTENANCE_CRON_ENV, raising=False)
    deployments = worker_deployments()
    assert set(deployments) == {"eujp-daily", "eujp-lake-maintain"}
    daily, maintenance = deployments["eujp-daily"], deployments["eujp-lake-maintain"]
    served = serve.maintenance_deployment()
    assert [(s["cron"], s["timezone"], s["active"]) for s in maintenance["schedules"]] == \
        [(s.schedule.cron, s.schedule.timezone, True) for s in served.schedules] == [("30 4 * * 0", "UTC", True)]
    assert [s["cron"] for s in daily["schedules"]] == [serve.DEFAULT_CRON]
    assert maintenance["work_pool"]["name"] == daily["work_pool"]["name"] == "eujp-process"
    assert maintenance["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_every_worker_start_line_runs_one_flow_at_a_time():
    """The two deployments share a pool and rely on the worker's --limit 1 to stay apart; infra/prefect.yaml's own
    header started the worker without it (docs/operations.md and compose had it)."""
    import re

    lines = {"infra/prefect.yaml": re.findall(r"prefect worker start[^\n#]*", (INFRA / "prefect.yaml").read_text()),
             "docs/operations.md": re.findall(r"prefect worker start[^\n`]*",
                                              (REPO / "docs" / "operations.md").read_text())}
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())["services"]["worker"]["command"]
    lines["infra/docker-compose.yml"] = [" ".join(compose)]
    for where, found in lines.items():
        assert found, where
        for line in found:
            assert re.search(r"--limit 1(\s|$)", line.strip()), (where, line)


def test_eujp_serve_never_defaults_to_the_worker_deployment_name():
    from flows import cli, serve

    default = inspect.signature(cli.serve).parameters["name"].default
    assert default != serve.WORKER_NAME


def test_eujp_serve_defaults_to_the_served_deployment_name():
    from flows import cli, serve

    assert inspect.signature(cli.serve).parameters["name"].default == serve.DEFAULT_NAME


def test_compose_creates_the_server_side_alert_once_the_server_is_healthy():
    services = compose()["services"]
    alerts = services["alerts"]
    assert alerts["command"] == ["python", "-m", "flows.automations"]
    assert alerts["image"] in {b.image for b in builds()}
    assert alerts["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert alerts["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert services["worker"]["depends_on"]["alerts"]["condition"] == "service_completed_successfully"
    assert services["prefect-server"]["environment"].get("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED") in (None, "true")
    # the webhook URL comes from the environment (infra/.env), never from the file
    text = COMPOSE_FILE.read_text()
    for line in text.splitlines():
        if "EUJP_ALERT_WEBHOOK_URL" in line and ":" in line and not line.strip().startswith("#"):
            assert "${EUJP_ALERT_WEBHOOK_URL" in line, line
    assert not re.search(r"https?://hooks\.", text)


def test_the_stack_passes_each_url_a_live_run_needs_from_infra_env():
    """The deployment runs every source live (infra/prefect.yaml); a source whose live endpoint has no default
    (SIPRI: EUJP_SIPRI_URL) failed every daily run, as neither the compose file nor infra/.env.example named
    its variable. Each such variable is passed to the containers from infra/.env and explained there."""
    from eujp.sources import SOURCES

    needed = [s.endpoint_env for s in SOURCES if s.endpoint is not None and s.endpoint.required]
    assert needed  # SIPRI's, today
    env = compose()["x-eujp-env"]
    example = (REPO / "infra" / ".env.example").read_text().splitlines()
    for name in needed:
        assert env[name] == f"${{{name}:-}}", env.get(name)
        (at,) = [i for i, line in enumerate(example) if line.startswith(f"{name}=")]
        assert example[at - 1].startswith("#") and name in " ".join(example[:at][-4:])
