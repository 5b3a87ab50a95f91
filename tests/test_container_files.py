"""Offline checks of containers/bam-compress (there is no Docker engine in CI).

What a ``docker build`` would catch without building: COPY sources that do not exist or that the
build context's ignore file leaves out, an ENTRYPOINT module that is not in the package, a pysam
pin that drifted from the one the tests ran with, root as the runtime user, htslib allowed to
fetch references over the network. And the part only a run can show, emulated in a subprocess:
the job module (through the checkout shim) needs nothing but the standard library, pysam, boto3
and the package itself — the image installs the package with ``--no-deps``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
IMAGE_DIR = REPO / "containers" / "bam-compress"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
DOCKERIGNORE = IMAGE_DIR / "Dockerfile.dockerignore"
SHIM = IMAGE_DIR / "entrypoint.py"
JOB_MODULE = "genolake_assets.programs.bam_compress"
DATA_BAM = REPO / "tests" / "data" / "bam"
IMAGE_PYTHON = "3.12"
# Stdlib modules of the dev venv's Python that the image's Python 3.12 no longer has.
REMOVED_IN_312 = frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd"})


# -- a small Dockerfile reader ---------------------------------------------------------------

def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    result = []
    for entry in logical:
        word, _, rest = entry.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def _stages(instructions):
    """The instructions per build stage (split at FROM)."""
    stages = []
    for word, args in instructions:
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, args))
    return stages


def _arguments(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def _env(args: str) -> dict[str, str]:
    values = {}
    for token in shlex.split(args):
        name, _, value = token.partition("=")
        values[name] = value
    return values


@pytest.fixture(scope="module")
def dockerfile():
    return _instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile):
    return _stages(dockerfile)[-1]


def _copies_from_context(dockerfile):
    for word, args in dockerfile:
        if word not in ("COPY", "ADD"):
            continue
        parts = _arguments(args)
        flags = [p for p in parts if p.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        yield [p for p in parts if not p.startswith("--")][:-1]


# -- .dockerignore semantics (enough of them: *, **, !, last match wins, parents count) -------

def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _ignore_rules():
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        rules.append((negated, _pattern_regex(pattern.strip("/"))))
    return rules


def _sent_to_builder(relative: str, rules) -> bool:
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # the path and its parents
    excluded = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return not excluded


# -- the Dockerfile -------------------------------------------------------------------------------

def test_every_copy_source_exists_and_is_in_the_build_context(dockerfile):
    rules = _ignore_rules()
    sources = [source for sources in _copies_from_context(dockerfile) for source in sources]
    assert {"pyproject.toml", "README.md", "genolake_assets"} <= {s.rstrip("/") for s in sources}
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: not in the repository (the build context is the repo root)"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files, f"COPY {source}: empty"
        left_out = [str(f.relative_to(REPO)) for f in files if not _sent_to_builder(str(f.relative_to(REPO)), rules)]
        assert not left_out, f"{DOCKERIGNORE.name} leaves out files the Dockerfile copies: {left_out[:5]}"


def test_the_build_context_leaves_out_the_venv_and_data():
    rules = _ignore_rules()
    for path in (".venv/bin/python", ".genolake/raw/bam/x.bam", "tests/data/bam/ce1000.bam", ".git/HEAD",
                 "genolake_assets/__pycache__/cli.cpython-312.pyc"):
        assert not _sent_to_builder(path, rules), path
    assert _sent_to_builder("genolake_assets/programs/bam_compress.py", rules)


def test_the_entrypoint_is_the_job_module(final_stage):
    entrypoints = [args for word, args in final_stage if word == "ENTRYPOINT"]
    assert entrypoints, "the image has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["python", "-m", JOB_MODULE]  # exec form: signals reach Python
    assert not [args for word, args in final_stage if word == "CMD"], "a default CMD would let a job run without a work order"


def test_the_entrypoint_module_is_importable():
    spec = importlib.util.find_spec(JOB_MODULE)
    if spec is None:
        pytest.skip(f"{JOB_MODULE} is not written yet")
    module = importlib.import_module(JOB_MODULE)
    assert callable(module.main)


def test_pysam_pin_matches_the_venv(dockerfile):
    import pysam

    runs = " ".join(args for word, args in dockerfile if word == "RUN")
    pins = re.findall(r"pysam==([0-9][0-9.]*)", runs)
    assert len(pins) == 1, f"expected one pysam==X.Y.Z pin in the Dockerfile, found {pins}"
    pinned, installed = Version(pins[0]), Version(pysam.__version__)
    assert (pinned.major, pinned.minor) == (installed.major, installed.minor), (
        f"the image pins pysam {pinned} but the tests run pysam {installed}: "
        "the CRAM codec and verifier would not be the ones tested")


def test_boto3_pin_satisfies_the_project_dependency(dockerfile):
    runs = " ".join(args for word, args in dockerfile if word == "RUN")
    pins = re.findall(r"boto3==([0-9][0-9.]*)", runs)
    assert len(pins) == 1, pins
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = next(Requirement(dep) for dep in project["dependencies"] if Requirement(dep).name == "boto3")
    assert Version(pins[0]) in wanted.specifier, f"boto3=={pins[0]} does not satisfy {wanted}"


def test_the_image_python_is_312_and_the_project_allows_it(dockerfile):
    bases = [args.split()[0] for word, args in dockerfile if word == "FROM"]
    assert bases and all(base.startswith(f"python:{IMAGE_PYTHON}-slim") for base in bases), bases
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert Version(f"{IMAGE_PYTHON}.0") in SpecifierSet(project["requires-python"])


def test_the_package_is_installed_without_its_dependencies(dockerfile):
    runs = [args for word, args in dockerfile if word == "RUN"]
    installs = [r for r in runs if re.search(r"pip (install|wheel)\b.*(\s\.(\s|$)|\.whl)", r)]
    assert installs and all("--no-deps" in r for r in installs), installs


def test_runs_as_a_non_root_user(final_stage):
    users = [(i, args) for i, (word, args) in enumerate(final_stage) if word == "USER"]
    assert users, "the image runs as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0"), user
    later_runs = [args for word, args in final_stage[index + 1:] if word == "RUN"]
    assert not later_runs, "RUN after USER: installs should happen as root, before dropping privileges"


def test_htslib_never_fetches_references_over_the_network(final_stage):
    env = {}
    for word, args in final_stage:
        if word == "ENV":
            env.update(_env(args))
    for name in ("REF_PATH", "REF_CACHE"):
        assert name in env, f"{name} is not set: htslib would ask the EBI reference server"
        value = env[name]
        assert value.startswith("/") and "http" not in value and "://" not in value, f"{name}={value}"
    runs = " ".join(args for word, args in final_stage if word == "RUN")
    cache_dir = env["REF_CACHE"].split("%")[0].rstrip("/")
    assert cache_dir in runs, f"{cache_dir} is not created (and made writable) in the image"


# -- the program the image runs, with only what the image installs ----------------------------------

def _image_import_names() -> set[str]:
    """Top-level modules the image provides besides the stdlib: pysam, boto3, their
    dependencies (from the venv's installed metadata) and genolake_assets."""
    seen, todo = set(), ["pysam", "boto3"]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    names = {"genolake_assets"}
    for module, distributions in importlib.metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in seen for d in distributions):
            names.add(module)
    return names


_BLOCKER = """
import importlib.abc, sys
ALLOWED = set({allowed!r})
REMOVED = set({removed!r})
class OnlyWhatTheImageHas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition('.')[0]
        if top in REMOVED or (top not in ALLOWED and top not in sys.stdlib_module_names):
            raise ModuleNotFoundError(f'{{name}} is not in the bam-compress image (pysam + boto3 only)', name=name)
        return None
sys.meta_path.insert(0, OnlyWhatTheImageHas())
import runpy
sys.argv = [{shim!r}] + {argv!r}
runpy.run_path({shim!r}, run_name='__main__')
"""


def _run_as_in_the_image(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """Run the checkout shim like the image runs the module: image ENV (paths re-rooted under
    tmp_path), a working directory outside the repo, and imports limited to what the image has."""
    env_lines = {}
    for word, args in _stages(_instructions(DOCKERFILE.read_text()))[-1]:
        if word == "ENV":
            env_lines.update(_env(args))
    root = tmp_path / "image"
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"}
    for name, value in env_lines.items():
        if value.startswith("/"):
            value = str(root) + value  # /var/cache/... -> <tmp>/image/var/cache/...
            Path(value.split("%")[0]).mkdir(parents=True, exist_ok=True)
        environment[name] = value
    code = _BLOCKER.format(allowed=sorted(_image_import_names()), removed=sorted(REMOVED_IN_312),
                           shim=str(SHIM), argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def job_module():
    if importlib.util.find_spec(JOB_MODULE) is None:
        pytest.skip(f"{JOB_MODULE} is not written yet")


def test_the_shim_runs_the_job_and_passes_its_exit_code_through(tmp_path, job_module):
    assert _run_as_in_the_image(tmp_path, "--help").returncode == 0
    missing = _run_as_in_the_image(tmp_path, "--work-order", str(tmp_path / "no-such-order.json"))
    assert missing.returncode == 3, missing.stderr  # bad input


def test_the_job_verifies_a_real_bam_with_only_what_the_image_installs(tmp_path, job_module):
    out = tmp_path / "out"
    order = {
        "work_order_version": 1,
        "input_uri": str(DATA_BAM / "ce1000.bam"),
        "reference_uri": str(DATA_BAM / "ref" / "ce.fa.gz"),
        "output_uri": str(out / "ce1000.cram"),
        "result_uri": str(out / "result.json"),
    }
    done = _run_as_in_the_image(tmp_path, "--work-order-json", json.dumps(order))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "verified"
    assert (out / "ce1000.cram").is_file()
    assert result["tool_versions"]["htslib"].startswith("1.2")
    # Nothing was fetched into the reference cache: the work order's reference was used.
    cache = tmp_path / "image" / "var" / "cache" / "genolake" / "ref"
    assert list(cache.rglob("*")) == []


def test_the_readme_documents_build_push_and_exit_codes():
    text = (REPO / "containers" / "README.md").read_text()
    # built from the repository root: the context argument is "."
    assert re.search(r"^docker build -f containers/bam-compress/Dockerfile .* \.$", text, re.MULTILINE)
    assert "docs/alignments.md" in text
    assert "ecr get-login-password" in text and "docker push" in text
    for code in ("`0`", "`1`", "`2`", "`3`"):
        assert code in text, code
