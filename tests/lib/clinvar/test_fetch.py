"""Issue 21, High 2: the ClinVar source is fetched only from what the operator allowed, within limits, and
nothing read is ever echoed. Loopback servers stand in for a mirror and for an instance metadata endpoint."""

from __future__ import annotations

import http.server
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from genolake_assets.lib.clinvar.fetch import NCBI_CLINVAR_PREFIX, SourcePolicy, SourceRefused, fetch

SECRET = '{"Code":"Success","AccessKeyId":"ASIAEXAMPLEKEY","SecretAccessKey":"abc"}'


@contextmanager
def serve(routes: dict):
    """A loopback HTTP server: path -> (status, headers, body or a callable writing the body)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            status, headers, body = routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if not callable(body):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                body(self.wfile) if callable(body) else self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def no_partial_left(dest: Path) -> bool:
    return not dest.exists() and not dest.with_name(dest.name + ".partial").exists()


@pytest.mark.parametrize("uri", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/role",
    "http://127.0.0.1:9/clinvar.txt.gz",
    "http://10.0.0.1/variant_summary.txt.gz",
    "http://ftp.ncbi.nlm.nih.gov/pub/clinvar/variant_summary.txt.gz",       # https only
    "https://ftp.ncbi.nlm.nih.gov.evil.example/pub/clinvar/x.txt.gz",
    "https://evil@ftp.ncbi.nlm.nih.gov/pub/clinvar/x.txt.gz",
    "https://ftp.ncbi.nlm.nih.gov:8443/pub/clinvar/x.txt.gz",
    "https://ftp.ncbi.nlm.nih.gov/pub/clinvar/../../etc/passwd",
    "https://ftp.ncbi.nlm.nih.gov/pub/clinvar/%2e%2e/%2e%2e/secret",
    "https://ftp.ncbi.nlm.nih.gov/pub/other/x.txt.gz",
    "/etc/passwd", "file:///etc/passwd", "../../etc/passwd", "s3://bucket/key.txt.gz", "gopher://x/y",
])
def test_the_default_policy_takes_only_ncbis_clinvar_folder(tmp_path, uri):
    dest = tmp_path / "out" / "clinvar.txt.gz"
    with pytest.raises((SourceRefused, FileNotFoundError)):
        fetch(uri, dest, SourcePolicy())
    assert no_partial_left(dest)


def test_ncbis_own_url_passes_the_default_check():
    url = NCBI_CLINVAR_PREFIX + "tab_delimited/variant_summary.txt.gz"
    assert SourcePolicy().check_url(url) == url


def test_an_allowed_mirror_is_fetched_with_its_release_date(tmp_path):
    body = b"#AlleleID\tType\n1\tSNV\n"
    with serve({"/clinvar/variant_summary.txt": (200, {"Last-Modified": "Mon, 04 Jan 2021 10:00:00 GMT"}, body)}) as url:
        policy = SourcePolicy(allowed_prefixes=(f"{url}/clinvar/",))
        dest = tmp_path / "variant_summary.txt"

        released = fetch(f"{url}/clinvar/variant_summary.txt", dest, policy)

    assert dest.read_bytes() == body and released == "2021-01-04"


def test_a_redirect_out_of_the_allowed_sources_is_refused_and_nothing_read_is_echoed(tmp_path):
    with serve({"/latest/meta-data/creds": (200, {}, SECRET.encode())}) as metadata:
        with serve({"/clinvar/release.txt.gz": (302, {"Location": f"{metadata}/latest/meta-data/creds"}, b"")}) as url:
            policy = SourcePolicy(allowed_prefixes=(f"{url}/clinvar/",))
            dest = tmp_path / "release.txt.gz"
            with pytest.raises(SourceRefused, match="not under an allowed source") as refused:
                fetch(f"{url}/clinvar/release.txt.gz", dest, policy)

    assert "ASIA" not in str(refused.value) and "Success" not in str(refused.value)
    assert no_partial_left(dest)


def test_a_file_over_the_size_limit_is_refused_whether_declared_or_not(tmp_path):
    big = b"x" * (3 << 20)

    def undeclared(out):
        out.write(big)

    with serve({"/c/declared.txt": (200, {}, big), "/c/streamed.txt": (200, {}, undeclared)}) as url:
        policy = SourcePolicy(allowed_prefixes=(f"{url}/c/",), max_bytes=1 << 20)
        for name in ("declared.txt", "streamed.txt"):
            dest = tmp_path / name
            with pytest.raises(SourceRefused, match="1,048,576-byte limit"):
                fetch(f"{url}/c/{name}", dest, policy)
            assert no_partial_left(dest)


def test_a_trickling_server_cannot_hold_the_fetch_past_its_time_limit(tmp_path):
    def trickle(out):
        for _ in range(40):
            out.write(b"x" * 10)
            out.flush()
            time.sleep(0.25)

    with serve({"/c/slow.txt": (200, {"Content-Length": "400"}, trickle)}) as url:
        policy = SourcePolicy(allowed_prefixes=(f"{url}/c/",), max_seconds=1.0)
        started = time.monotonic()
        with pytest.raises(SourceRefused, match="1-second limit"):
            fetch(f"{url}/c/slow.txt", tmp_path / "slow.txt", policy)

    assert time.monotonic() - started < 5


def test_local_files_only_from_an_allowed_folder_with_symlinks_resolved(tmp_path):
    allowed = tmp_path / "mirror"
    allowed.mkdir()
    (allowed / "clinvar.txt").write_text("#AlleleID\n")
    (allowed / "escape.txt").symlink_to("/etc/passwd")
    outside = tmp_path / "key.txt"
    outside.write_text("c2VjcmV0LWtleS1tYXRlcmlhbC1iYXNlNjQtdGV4dA==")
    policy = SourcePolicy(local_dirs=(allowed,))

    fetch(str(allowed / "clinvar.txt"), tmp_path / "out.txt", policy)
    assert (tmp_path / "out.txt").read_text() == "#AlleleID\n"
    for uri in (str(allowed / "escape.txt"), str(outside), f"{allowed}/../key.txt", outside.as_uri()):
        with pytest.raises(SourceRefused, match="not in an allowed folder") as refused:
            fetch(uri, tmp_path / "stolen.txt", policy)
        assert "c2Vj" not in str(refused.value) and "root:" not in str(refused.value)
    with pytest.raises(SourceRefused, match="GENOLAKE_CLINVAR_LOCAL_DIRS"):
        fetch(str(allowed / "clinvar.txt"), tmp_path / "out2.txt", SourcePolicy())


@pytest.mark.parametrize("prefix", ["file:///etc/", "https://host/no-trailing-slash", "https://u:p@host/x/",
                                    "https://host/a/../b/", "//host/x/"])
def test_a_malformed_operator_prefix_is_refused_at_start_up(prefix):
    with pytest.raises(ValueError, match="allowed source"):
        SourcePolicy(allowed_prefixes=(prefix,))


def test_the_operators_settings_are_read_and_checked_when_the_code_location_loads(monkeypatch, tmp_path):
    from genolake_assets.settings import Settings

    monkeypatch.setenv("GENOLAKE_CLINVAR_SOURCES", "https://mirror.example.org/clinvar/, https://ftp.ncbi.nlm.nih.gov/pub/clinvar/")
    monkeypatch.setenv("GENOLAKE_CLINVAR_LOCAL_DIRS", str(tmp_path))
    monkeypatch.setenv("GENOLAKE_CLINVAR_MAX_BYTES", "1000")
    policy = Settings.from_env().clinvar_sources
    assert policy.allowed_prefixes == ("https://mirror.example.org/clinvar/", NCBI_CLINVAR_PREFIX)
    assert policy.local_dirs == (tmp_path,) and policy.max_bytes == 1000

    monkeypatch.setenv("GENOLAKE_CLINVAR_SOURCES", "file:///etc/")
    with pytest.raises(ValueError, match="allowed source 'file:///etc/'"):
        Settings.from_env()
    monkeypatch.delenv("GENOLAKE_CLINVAR_SOURCES")
    monkeypatch.setenv("GENOLAKE_CLINVAR_LOCAL_DIRS", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="is not a folder"):
        Settings.from_env()
