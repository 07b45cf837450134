"""The web application's guards, route by route: no access without a session, none across clinics (another
clinic's case and job are answered exactly like missing ones), CSRF on every write, roles, upload limits and file
names, sign-in throttling and what the store keeps of passwords and cookies, the response headers, and bad
requests told in one line with nothing half-saved.

Routes are enumerated from the app itself, so a route added without its guard fails here. One store for the
module (the demo clinic, a second clinic with its own case, a technician and an admin), one worker process; the
only job started is a fitting without adjustments (it records, it builds nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from socketcad import operations as ops
from socketcad.clinic.models import Case, Clinic
from socketcad.clinic.store import Store
from socketcad.web.app import COOKIE, create_app
from socketcad.web.jobs import Jobs

DEMO, MISSING, OTHER_CASE = "DEMO-TT-1", "NO-SUCH-CASE-9", "OTHER-TT-1"
FAKE_JOB = "0123456789abcdef0123456789abcdef"
PASSWORDS = {"demo": "socketcad-demo", "olga": "olga-other-clinic-7731", "tess": "tess-technician-5520",
             "adam": "adam-administrator-9912"}
NOT_ROUTES = {("POST", "/api/session"), ("GET", "/api/openapi.json"), ("GET", "/api/docs")}
TABLES = ("cases", "scans", "revisions", "evaluations", "fabrications", "fittings", "deliveries", "followups",
          "analyses", "landmark_moves", "audit_events", "users", "clinics")
FABRICATION = {"stage": "test", "material": "petg", "lab": "lab"}


def tetrahedron_stl() -> bytes:
    """A binary STL of four faces: a valid mesh, not a limb."""
    points = [(0, 0, 0), (10, 0, 0), (0, 10, 0), (0, 0, 10)]
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    data = b"\0" * 80 + struct.pack("<I", len(faces))
    for face in faces:
        data += struct.pack("<3f", 0, 0, 0) + b"".join(struct.pack("<3f", *points[i]) for i in face) + b"\0\0"
    return data


TINY_STL = tetrahedron_stl()

# A request each write route takes: were its guard missing, it would do something (and be seen doing it).
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/api/cases"): {"json": {"reference": "NEW-BY-GUEST", "level": "transtibial", "side": "left"}},
    ("POST", "/api/cases/{reference}/evaluations"): {"json": {"k_level": "K2"}},
    ("POST", "/api/cases/{reference}/scans"): {"files": {"file": ("scan.stl", TINY_STL)}},
    ("POST", "/api/cases/{reference}/scans/{scan}/landmarks"): {"json": {"name": "fibular_head",
                                                                          "point_mm": [0.0, 0.0, 100.0]}},
    ("POST", "/api/cases/{reference}/preview"): {"json": {"template": "tsb"}},
    ("POST", "/api/cases/{reference}/proposal"): {"json": {}},
    ("POST", "/api/cases/{reference}/revisions"): {"json": {"template": "tsb"}},
    ("POST", "/api/cases/{reference}/revisions/{revision}/analysis"): {"json": {"quick": True, "body_mass_kg": 80}},
    ("POST", "/api/cases/{reference}/revisions/{revision}/fittings"): {"json": {"comfort": 3}},
    ("POST", "/api/cases/{reference}/revisions/{revision}/fabrications"): {"json": FABRICATION},
    ("POST", "/api/cases/{reference}/revisions/{revision}/deliveries"): {"json": {"taught": ["don_doff"]}},
    ("POST", "/api/cases/{reference}/followups"): {"files": {"file": ("follow.stl", TINY_STL)}},
    ("POST", "/api/users"): {"json": {"username": "mallory", "password": "mallory-password-1", "role": "admin"}},
}
QUERIES = {"/api/cases/{reference}/scans/{scan}/section": {"level_mm": 100},
           "/api/cases/{reference}/diff": {"first": 1, "second": 1}}


@dataclass
class User:
    name: str
    client: TestClient
    csrf: str
    token: str

    def call(self, method: str, path: str, csrf: str | None = "own", **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if csrf is not None:
            headers["x-csrf-token"] = self.csrf if csrf == "own" else csrf
        return self.client.request(method, path, headers=headers, **kwargs)


@dataclass
class World:
    store: Store
    jobs: Jobs
    app: object
    demo: User
    other: User
    tech: User
    admin: User
    demo_case_id: int
    folder: Path


def client(app, address: str = "testclient") -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


def sign_in(app, name: str, address: str = "testclient") -> User:
    browser = client(app, address)
    answer = browser.post("/api/session", json={"username": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    return User(name, browser, answer.json()["csrf_token"], answer.cookies[COOKIE])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("websec")
    store = Store(folder / "store")
    ops.demo_clinic(store)
    ops.add_user(store, ops.AddUserRequest(username="olga", password=PASSWORDS["olga"], role="prosthetist",
                                           clinic="Other clinic"), "test")
    for name, role in (("tess", "technician"), ("adam", "admin")):
        ops.add_user(store, ops.AddUserRequest(username=name, password=PASSWORDS[name], role=role,
                                               clinic="Demo clinic"), "test")
    with store.transaction() as db:
        other_clinic = db.scalar(select(Clinic.id).where(Clinic.name == "Other clinic"))
        demo_case = db.scalar(select(Case.id).where(Case.reference == DEMO))
    ops.new_case(store, ops.NewCaseRequest(reference=OTHER_CASE, level="transtibial", side="left"), "olga",
                 other_clinic)
    jobs = Jobs(store.data_folder, None, workers=1)
    app = create_app(store, jobs)
    try:
        yield World(store, jobs, app, sign_in(app, "demo"), sign_in(app, "olga"), sign_in(app, "tess"),
                    sign_in(app, "adam"), demo_case, folder)
    finally:
        jobs.close()


def api_routes(app) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if route.path.startswith("/api/") and method != "HEAD" and (method, route.path) not in NOT_ROUTES:
                found.append((method, route.path))
    assert len(found) > 20, found  # the enumeration sees the app's routes
    return found


def fill(path: str, reference: str = DEMO) -> str:
    return path.format(reference=reference, scan=1, revision=1, job_id=FAKE_JOB, kind="html", name="socket.stl")


def request_of(method: str, path: str) -> dict:
    kwargs = dict(BODIES.get((method, path), {"json": {}} if method != "GET" and method != "DELETE" else {}))
    if path in QUERIES:
        kwargs["params"] = QUERIES[path]
    return kwargs


def counts(world: World) -> dict[str, int]:
    with world.store.engine.connect() as db:
        found = {table: db.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in TABLES}
        found["audit of the demo case"] = db.execute(
            text("SELECT count(*) FROM audit_events WHERE case_id = :id"), {"id": world.demo_case_id}).scalar()
    found["jobs"] = len(world.jobs._jobs)
    found["stored files"] = sum(1 for p in (world.store.data_folder / "objects").rglob("*") if p.is_file())
    return found


def one_line(answer) -> str:
    assert answer.headers["content-type"].startswith("application/json"), (answer.status_code, answer.text[:300])
    body = answer.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    detail = body["detail"]
    assert detail and "\n" not in detail and "Traceback" not in detail and len(detail) < 400, detail
    return detail


# --- 1. nothing without a session ------------------------------------------------------------------------------

def test_every_api_route_needs_a_session(world):
    guest = client(world.app)
    before = counts(world)
    wrong = []
    for method, path in api_routes(world.app):
        for cookie in (None, "made-up-token", "x" * 200):
            if cookie is not None:
                guest.cookies.set(COOKIE, cookie)
            answer = guest.request(method, fill(path), **request_of(method, path))
            guest.cookies.clear()
            if answer.status_code != 401 or "sign in" not in one_line(answer):
                wrong.append((method, path, cookie, answer.status_code, answer.text[:120]))
    assert not wrong, wrong
    assert counts(world) == before


# --- 2. nothing across clinics ---------------------------------------------------------------------------------

def test_another_clinics_case_is_told_like_a_missing_one(world, fit_job):
    before = counts(world)
    case_routes = [(m, p) for m, p in api_routes(world.app) if "{reference}" in p]
    assert len(case_routes) >= 18, case_routes
    wrong = []
    for method, path in case_routes:
        kwargs = request_of(method, path)
        theirs = world.other.call(method, fill(path, DEMO), **kwargs)
        missing = world.other.call(method, fill(path, MISSING), **kwargs)
        if theirs.status_code != 404 or missing.status_code != 404:
            wrong.append((method, path, theirs.status_code, missing.status_code, theirs.text[:120]))
            continue
        told, told_missing = one_line(theirs), one_line(missing)
        if told.replace(DEMO, "REF") != told_missing.replace(MISSING, "REF"):
            wrong.append((method, path, told, told_missing))
        if set(theirs.headers) != set(missing.headers):
            wrong.append((method, path, sorted(set(theirs.headers) ^ set(missing.headers))))
    assert not wrong, wrong
    assert counts(world) == before
    # the owner does see it: the refusal above is the clinic's, not a broken route
    assert world.demo.call("GET", f"/api/cases/{DEMO}").status_code == 200


def test_another_clinics_case_is_not_listed_nor_found(world):
    listed = world.other.call("GET", "/api/cases")
    assert listed.status_code == 200, listed.text
    assert DEMO not in listed.text and OTHER_CASE in listed.text
    for q in ("DEMO", "demo", "TT", DEMO):
        found = world.other.call("GET", "/api/cases", params={"q": q})
        assert found.status_code == 200 and DEMO not in found.text, (q, found.text)
    assert DEMO in world.demo.call("GET", "/api/cases", params={"q": "DEMO"}).text
    assert OTHER_CASE not in world.demo.call("GET", "/api/cases").text


def test_ids_of_another_clinics_records_do_not_reach_them_through_an_own_case(world):
    """Scan 1 and revision 1 are the demo case's: named under the other clinic's own case they are refused."""
    before = counts(world)
    for method, path in [(m, p) for m, p in api_routes(world.app) if "{scan}" in p or "{revision}" in p]:
        answer = world.other.call(method, fill(path, OTHER_CASE), **request_of(method, path))
        # refused before any work: no job starts for a revision that is not the case's
        assert 400 <= answer.status_code < 500, (method, path, answer.status_code, answer.text[:200])
        assert DEMO not in one_line(answer)
    assert counts(world) == before


# --- 3. jobs are their clinic's --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fit_job(world) -> str:
    """A fitting without adjustments as the demo prosthetist (it records, builds nothing); finished."""
    started = world.demo.call("POST", f"/api/cases/{DEMO}/revisions/1/fittings", json={"comfort": 7})
    assert started.status_code == 200, started.text
    job = started.json()["id"]
    assert wait_for(world.demo, job)["state"] == "done"
    return job


def wait_for(user: User, job: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        state = user.call("GET", f"/api/jobs/{job}").json()
        if state["state"] in ("done", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def test_a_job_is_its_clinics(world, fit_job):
    own = world.demo.call("GET", f"/api/jobs/{fit_job}")
    assert own.status_code == 200 and own.json()["state"] == "done", own.text
    events = world.demo.call("GET", f"/api/jobs/{fit_job}/events")
    assert events.status_code == 200 and '"state":"done"' in events.text, events.text[:300]
    for path in ("/api/jobs/{}", "/api/jobs/{}/events"):
        theirs, missing = world.other.call("GET", path.format(fit_job)), world.other.call("GET", path.format(FAKE_JOB))
        assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
        assert one_line(theirs).replace(fit_job, "ID") == one_line(missing).replace(FAKE_JOB, "ID")
        assert DEMO not in theirs.text
    # a technician of the same clinic may follow it (read)
    assert world.tech.call("GET", f"/api/jobs/{fit_job}").status_code == 200


# --- 4. CSRF ---------------------------------------------------------------------------------------------------

def test_every_write_needs_the_sessions_csrf_token(world):
    writes = [(m, p) for m, p in api_routes(world.app) if m != "GET"]
    assert ("DELETE", "/api/session") in writes and len(writes) >= 14, writes
    before = counts(world)
    wrong = []
    for method, path in writes:
        for token in (None, "", "not-the-token", world.tech.csrf, world.demo.csrf + "x", world.demo.csrf[:-1]):
            answer = world.demo.call(method, fill(path), csrf=token, **request_of(method, path))
            if answer.status_code != 403 or "CSRF" not in one_line(answer):
                wrong.append((method, path, token, answer.status_code, answer.text[:120]))
    assert not wrong, wrong
    assert counts(world) == before
    assert world.demo.call("GET", "/api/session").status_code == 200  # the refused DELETE signed nobody out


def test_a_csrf_token_is_of_its_session_only(world):
    """A second session of the same user has its own token: the first session's writes refuse it."""
    second = sign_in(world.app, "demo")
    assert second.csrf != world.demo.csrf and second.token != world.demo.token
    before = counts(world)
    answer = world.demo.call("POST", f"/api/cases/{DEMO}/revisions/1/fabrications", csrf=second.csrf,
                             json=FABRICATION)
    assert answer.status_code == 403, answer.text
    assert counts(world) == before


# --- 5. roles --------------------------------------------------------------------------------------------------

TECHNICIAN_REFUSED = [
    ("POST", "/api/cases", {"json": {"reference": "TECH-1", "level": "transtibial", "side": "left"}}),
    ("POST", f"/api/cases/{DEMO}/evaluations", {"json": {"k_level": "K2"}}),
    ("POST", f"/api/cases/{DEMO}/scans", {"files": {"file": ("scan.stl", TINY_STL)}}),
    ("POST", f"/api/cases/{DEMO}/scans/1/landmarks", {"json": {"name": "fibular_head", "point_mm": [0, 0, 100]}}),
    ("POST", f"/api/cases/{DEMO}/revisions", {"json": {"template": "tsb"}}),
    ("POST", f"/api/cases/{DEMO}/revisions/1/analysis", {"json": {"quick": True, "body_mass_kg": 80}}),
    ("POST", f"/api/cases/{DEMO}/revisions/1/fittings", {"json": {"comfort": 5}}),
    ("POST", f"/api/cases/{DEMO}/revisions/1/deliveries", {"json": {"taught": ["don_doff"]}}),
    ("POST", f"/api/cases/{DEMO}/followups", {"files": {"file": ("follow.stl", TINY_STL)}}),
    ("POST", "/api/users", {"json": {"username": "tess2", "password": "tess2-password", "role": "admin"}}),
]
ROLE_TABLE = (
    [("tech", m, p, kw, 403) for m, p, kw in TECHNICIAN_REFUSED]
    + [("tech", "GET", f"/api/cases/{DEMO}", {}, 200), ("tech", "GET", "/api/cases", {}, 200),
       ("tech", "GET", f"/api/cases/{DEMO}/revisions/1/files/sheet.json", {}, 200),
       ("admin", "GET", f"/api/cases/{DEMO}", {}, 403), ("admin", "GET", "/api/cases", {}, 403),
       ("admin", "GET", f"/api/cases/{DEMO}/scans/1", {}, 403),
       ("admin", "GET", f"/api/cases/{DEMO}/revisions/1/files/socket.stl", {}, 403),
       ("admin", "POST", f"/api/cases/{DEMO}/revisions/1/fabrications", {"json": FABRICATION}, 403),
       ("admin", "POST", "/api/cases", {"json": {"reference": "ADM-1", "level": "transtibial", "side": "left"}},
        403),
       ("demo", "POST", "/api/users", {"json": {"username": "eve", "password": "eve-password-1", "role": "admin"}},
        403)])


@pytest.mark.parametrize("who, method, path, kwargs, status", ROLE_TABLE,
                         ids=[f"{w}-{m}-{p.replace(f'/api/cases/{DEMO}', '/case')}" for w, m, p, _, _ in ROLE_TABLE])
def test_roles_route_by_route(world, who, method, path, kwargs, status):
    user = getattr(world, who)
    before = counts(world)
    answer = user.call(method, path, **kwargs)
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    if status == 403:
        assert "may not" in one_line(answer)
        assert counts(world) == before


def test_a_technician_records_a_fabrication(world):
    before = counts(world)
    answer = world.tech.call("POST", f"/api/cases/{DEMO}/revisions/1/fabrications", json=FABRICATION)
    assert answer.status_code == 200, answer.text
    after = counts(world)
    assert after["fabrications"] == before["fabrications"] + 1 and after["jobs"] == before["jobs"]


def test_a_technician_is_refused_every_other_write_of_a_case(world):
    """Programmatic: each case write but fabrication and the read-only preview/proposal is refused (403)."""
    allowed = {"/api/cases/{reference}/revisions/{revision}/fabrications", "/api/cases/{reference}/preview",
               "/api/cases/{reference}/proposal"}
    before = counts(world)
    wrong = []
    for method, path in api_routes(world.app):
        if method != "GET" and "{reference}" in path and path not in allowed:
            answer = world.tech.call(method, fill(path), **request_of(method, path))
            if answer.status_code != 403:
                wrong.append((method, path, answer.status_code, answer.text[:120]))
    assert not wrong, wrong
    assert counts(world) == before


def test_an_admin_adds_users_to_their_own_clinic_only(world):
    answer = world.admin.call("POST", "/api/users", json={"username": "tom", "password": "tom-technician-1",
                                                          "role": "technician", "clinic": "Other clinic"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["clinic"] == "Demo clinic" and answer.json()["role"] == "technician"
    refused = world.admin.call("POST", "/api/users", json={"username": "tom", "password": "tom-technician-1",
                                                           "role": "technician"})
    assert refused.status_code == 400 and "tom" in one_line(refused)
    weak = world.admin.call("POST", "/api/users", json={"username": "tim", "password": "short", "role": "technician"})
    assert weak.status_code == 400 and "password" in one_line(weak)


# --- 6. uploads ------------------------------------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """The process's largest resident size while the block runs, sampled every 2 ms."""

    def __enter__(self):
        self.start, self.peak, self._done = rss_mb(), rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.002):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def grew_mb(self) -> float:
        return self.peak - self.start


def test_a_200_mib_upload_is_refused_by_its_length_at_once(world):
    sent = []

    def body():  # a few KB, whatever the header claims
        for _ in range(4):
            sent.append(1)
            yield b"\0" * 1024

    before = counts(world)
    with PeakRss() as rss:
        started = time.monotonic()
        answer = world.demo.call("POST", f"/api/cases/{DEMO}/scans", content=body(),
                                 headers={"content-length": str(200 * 2**20),
                                          "content-type": "multipart/form-data; boundary=xyz"})
        seconds = time.monotonic() - started
    assert answer.status_code == 413, answer.text
    assert "MiB" in one_line(answer) and seconds < 2.0 and rss.grew_mb < 50, (seconds, rss.grew_mb)
    assert not sent  # not a byte of the body was read
    assert counts(world) == before


def asgi_post(app, path: str, headers: list[tuple[bytes, bytes]], chunks) -> tuple[int, bytes, int]:
    """POST ``chunks`` (an iterator of bytes) to the app as a server would stream them (no Content-Length): the
    status, the body, and how many chunks the app read."""
    read, out = [0], []

    async def receive():
        try:
            chunk = next(chunks)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        read[0] += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        out.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in out if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body"), read[0]


def test_a_200_mib_upload_streamed_without_a_length_is_stopped_at_the_limit(world):
    head = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.stl"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    mib = b"\0" * 2**20

    def chunks():
        yield head
        for _ in range(200):
            yield mib
        yield b"\r\n--xyz--\r\n"

    headers = [(b"content-type", b"multipart/form-data; boundary=xyz"), (b"x-csrf-token", world.demo.csrf.encode()),
               (b"cookie", f"{COOKIE}={world.demo.token}".encode())]
    before = counts(world)
    with PeakRss() as rss:
        started = time.monotonic()
        status, body, read = asgi_post(world.app, f"/api/cases/{DEMO}/scans", headers, chunks())
        seconds = time.monotonic() - started
    assert status == 413, body
    detail = json.loads(body)["detail"]
    assert "MiB" in detail and "\n" not in detail
    assert read <= 66, read  # stopped at the 64 MiB limit, not read to its end
    assert seconds < 2.0 and rss.grew_mb < 50, (seconds, rss.grew_mb)
    assert counts(world) == before
    # and a JSON body alike
    status, body, read = asgi_post(world.app, "/api/cases", [(b"content-type", b"application/json"), *headers[1:]],
                                   iter([b'{"reference": "'] + [b"A" * 2**20] * 80))
    assert status == 413 and read <= 66, (status, body, read)


def test_an_stl_claiming_a_billion_faces_is_refused_at_once(world):
    data = b"\0" * 80 + struct.pack("<I", 10**9) + b"\0" * 4000
    before = counts(world)
    started = time.monotonic()
    answer = world.demo.call("POST", f"/api/cases/{DEMO}/scans", files={"file": ("huge.stl", data)})
    seconds = time.monotonic() - started
    assert answer.status_code == 400, answer.text
    assert "huge.stl" in one_line(answer) and seconds < 2.0, (answer.text, seconds)
    assert counts(world) == before


def multipart(filename: bytes, data: bytes) -> tuple[bytes, str]:
    """A multipart body with the file name as given, byte for byte (httpx would escape control characters)."""
    body = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--xyz--\r\n")
    return body, "multipart/form-data; boundary=xyz"


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}


UGLY_NAMES = [b"../../etc/passwd.stl", b"..\\\\..\\\\x.stl", b"..\\..\\x.stl", b"/etc/passwd.stl",
              b"a\x00b.stl", b"bad\x1b[31m.stl", b"tab\there.stl", b"new\nline.stl", b"..", b".", b"",
              "ünïcode-\u202egnp.stl".encode()]


@pytest.mark.parametrize("filename", UGLY_NAMES, ids=[repr(n)[2:-1][:24] for n in UGLY_NAMES])
def test_an_upload_names_no_file_outside_the_store(world, filename, tmp_path, monkeypatch):
    store_folder = world.store.data_folder
    # this process's temporary files (the upload's folder) go to a folder of this test's own: other tests,
    # on the other worker, make and remove theirs in the shared one meanwhile
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_root))
    targets = [Path("/etc/passwd.stl"), Path("/x.stl"), Path("/tmp/x.stl"), Path("/tmp/passwd.stl"),
               Path.cwd() / "x.stl", store_folder.parent / "x.stl", tmp_path / "x.stl"]
    existing = {target for target in targets if target.exists()}
    temp_before = set(os.listdir(tmp_root))
    store_before = files_under(store_folder)
    before = counts(world)
    body, kind = multipart(filename, TINY_STL)
    answer = world.demo.call("POST", f"/api/cases/{DEMO}/scans", content=body, headers={"content-type": kind})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    detail = one_line(answer)
    assert "/etc" not in detail and "\x00" not in detail and "\x1b" not in detail, detail
    assert counts(world) == before
    # nothing new in the store but its own files, nothing left in the temporary folder, no passwd.stl anywhere
    new = files_under(store_folder) - store_before
    assert all(p.parts[0] == "objects" or p.name.startswith("socketcad.db") for p in new), new
    assert set(os.listdir(tmp_root)) == temp_before
    assert {target for target in targets if target.exists()} == existing
    stray = [p for p in tmp_path.rglob("*") if "passwd" in p.name or p.name.endswith("x.stl")]
    assert not stray, stray


# --- 7. sign-in ------------------------------------------------------------------------------------------------

def test_a_wrong_password_and_an_unknown_user_are_told_alike(world):
    app = create_app(world.store, world.jobs)  # its own throttle
    browser = client(app, "10.0.0.1")
    wrong = browser.post("/api/session", json={"username": "demo", "password": "not-the-password"})
    unknown = browser.post("/api/session", json={"username": "nobody-here", "password": "not-the-password"})
    assert wrong.status_code == unknown.status_code == 400
    assert one_line(wrong) == one_line(unknown)
    assert COOKIE not in wrong.cookies and COOKIE not in unknown.cookies


def test_sign_in_is_throttled_per_username(world):
    app = create_app(world.store, world.jobs)
    for attempt in range(5):  # from five addresses: the username's count, not an address's
        answer = client(app, f"10.1.0.{attempt}").post("/api/session", json={"username": "tess", "password": "no!"})
        assert answer.status_code == 400, (attempt, answer.text)
    sixth = client(app, "10.1.0.99").post("/api/session", json={"username": "tess", "password": PASSWORDS["tess"]})
    assert sixth.status_code == 429 and COOKIE not in sixth.cookies, sixth.text
    assert "try again" in one_line(sixth)
    other = client(app, "10.1.0.99").post("/api/session", json={"username": "adam", "password": PASSWORDS["adam"]})
    assert other.status_code == 200, other.text  # another user is not locked out with them


def test_sign_in_is_throttled_per_client_address(world):
    app = create_app(world.store, world.jobs)
    browser = client(app, "10.2.0.1")
    for attempt in range(5):  # five usernames from one address
        answer = browser.post("/api/session", json={"username": f"guess{attempt}", "password": "password123"})
        assert answer.status_code == 400, (attempt, answer.text)
    sixth = browser.post("/api/session", json={"username": "adam", "password": PASSWORDS["adam"]})
    assert sixth.status_code == 429, sixth.text
    elsewhere = client(app, "10.2.0.2").post("/api/session", json={"username": "adam", "password": PASSWORDS["adam"]})
    assert elsewhere.status_code == 200, elsewhere.text


def test_a_signed_out_session_no_longer_works(world):
    user = sign_in(world.app, "tess", "10.3.0.1")
    assert user.call("GET", "/api/session").status_code == 200
    out = user.call("DELETE", "/api/session")
    assert out.status_code == 200, out.text
    replay = client(world.app, "10.3.0.1")
    replay.cookies.set(COOKIE, user.token)
    assert replay.get("/api/session").status_code == 401
    assert replay.get(f"/api/cases/{DEMO}").status_code == 401
    answer = replay.post(f"/api/cases/{DEMO}/revisions/1/fabrications", json=FABRICATION,
                         headers={"x-csrf-token": user.csrf})
    assert answer.status_code == 401, answer.text


def test_the_store_keeps_no_password_and_no_cookie_token(world):
    ended = sign_in(world.app, "adam", "10.4.0.1")
    ended.call("DELETE", "/api/session")
    live = [world.demo, world.other, world.tech, world.admin]
    stored = b"".join(p.read_bytes() for p in sorted(world.store.data_folder.rglob("*")) if p.is_file())
    assert stored.count(b"argon2id") >= len(PASSWORDS)  # the hashes are there: the right bytes were read
    assert hashlib.sha256(world.demo.token.encode()).hexdigest().encode() in stored  # the token's SHA-256 is
    for name, password in PASSWORDS.items():
        assert password.encode() not in stored, name
        assert password.encode("utf-16-le") not in stored, name
    for user in [*live, ended]:
        assert user.token.encode() not in stored, user.name


# --- 8. headers ------------------------------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(world):
    guest = client(world.app)
    answers = {"signed in": world.demo.call("GET", "/api/session"), "401": guest.get("/api/cases"),
               "403": world.admin.call("GET", "/api/cases"), "404": world.other.call("GET", f"/api/cases/{DEMO}"),
               "no route": guest.get("/api/nothing-here"), "page": guest.get("/"),
               "422": world.demo.call("POST", "/api/cases", content=b"{", headers={"content-type": "application/json"}),
               "413": world.demo.call("POST", "/api/cases", content=b"{}",
                                      headers={"content-length": str(65 * 2**20)})}
    for what, answer in answers.items():
        headers = answer.headers
        csp = [part.strip() for part in headers.get("content-security-policy", "").split(";")]
        assert "default-src 'self'" in csp, (what, headers)
        assert "frame-ancestors 'none'" in csp, (what, headers)
        assert headers.get("x-content-type-options") == "nosniff", (what, headers)
        assert headers.get("x-frame-options") == "DENY", (what, headers)
    for what in ("signed in", "401", "404", "422"):
        assert answers[what].headers.get("cache-control") == "no-store", what


def test_the_session_cookie_is_http_only_and_same_site_strict(world):
    answer = client(world.app, "10.5.0.1").post("/api/session", json={"username": "demo",
                                                                      "password": PASSWORDS["demo"]})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    parts = [part.strip().lower() for part in cookie.split(";")]
    assert parts[0].startswith(f"{COOKIE}=") and "httponly" in parts and "samesite=strict" in parts, cookie
    assert "path=/" in parts, cookie
    assert answer.json()["csrf_token"] and answer.json()["csrf_token"] not in cookie
    assert "token" not in answer.json()  # the cookie's token is not in the body: scripts never see it


# --- 9. bad requests -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"reference": "HALF-1", "level": "transtibial"}, "side"),
    ({"reference": "HALF-2", "side": "left"}, "level"),
    ({"reference": "HALF-3", "level": "hip", "side": "left"}, "level"),
    ({"reference": "HALF-4", "level": "transtibial", "side": "up"}, "side"),
    ({"reference": "HALF-5", "level": "transtibial", "side": "left", "clinic_id": 2}, "clinic_id"),
    ({"reference": "HALF-6", "level": ["transtibial"], "side": "left"}, "level"),
])
def test_a_bad_new_case_is_told_in_one_line_naming_the_field(world, body, field):
    before = counts(world)
    answer = world.demo.call("POST", "/api/cases", json=body)
    assert answer.status_code in (400, 422), answer.text
    assert field in one_line(answer), answer.text
    assert counts(world) == before
    with world.store.transaction() as db:
        assert db.scalar(select(Case.id).where(Case.reference == body["reference"])) is None


@pytest.mark.parametrize("content", [b'{"reference": "HALF-7", "level": "transtibial", ', b"[1, 2]", b"\xff\xfe",
                                     b'{"reference": "HALF-8", "level": "transtibial", "side": "left"} trailing'])
def test_a_malformed_body_is_told_in_one_line(world, content):
    before = counts(world)
    answer = world.demo.call("POST", "/api/cases", content=content, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    one_line(answer)
    assert counts(world) == before


# --- 10. a body names nothing the address gives, and no file of the server --------------------------------------

URL_FIELDS_IN_BODY = [
    (f"/api/cases/{DEMO}/preview", {"reference": OTHER_CASE, "template": "tsb"}),
    (f"/api/cases/{DEMO}/proposal", {"reference": OTHER_CASE}),
    (f"/api/cases/{DEMO}/revisions", {"reference": OTHER_CASE, "template": "tsb"}),
    (f"/api/cases/{DEMO}/scans/1/landmarks", {"scan": 2, "name": "fibular_head", "point_mm": [0, 0, 100]}),
    (f"/api/cases/{DEMO}/revisions/1/analysis", {"mesh_cache": "/tmp", "quick": True, "body_mass_kg": 80}),
    (f"/api/cases/{DEMO}/revisions/1/analysis", {"revision": 2, "quick": True, "body_mass_kg": 80}),
    (f"/api/cases/{DEMO}/revisions/1/fittings", {"revision": 2, "comfort": 5}),
    (f"/api/cases/{DEMO}/revisions/1/fabrications", {"reference": OTHER_CASE, **FABRICATION}),
    (f"/api/cases/{DEMO}/revisions/1/deliveries", {"revision": 2}),
]


@pytest.mark.parametrize("path, body", URL_FIELDS_IN_BODY, ids=[f"{p.split('/')[-1]}-{next(iter(b))}"
                                                                for p, b in URL_FIELDS_IN_BODY])
def test_a_body_giving_what_the_address_gives_is_a_bad_request(world, path, body):
    before = counts(world)
    answer = world.demo.call("POST", path, json=body)
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert next(iter(body)) in one_line(answer)
    assert counts(world) == before


@pytest.mark.parametrize("path, body", [
    (f"/api/cases/{DEMO}/preview", {"plan": "{}"}),
    (f"/api/cases/{DEMO}/revisions", {"plan": "{}"}),
    (f"/api/cases/{DEMO}/revisions", {"template": "tsb", "spec_file": "{}"}),
], ids=["preview-plan", "revision-plan", "revision-spec_file"])
def test_a_body_names_no_file_of_the_server(world, path, body):
    """A plan or spec is given as data: a path in its place would have the server read its own files (and tell
    which exist), so the answer to an existing file is the answer to a missing one, and no job starts."""
    secret = world.folder / "secret.yaml"
    secret.write_text("password: hunter2\nother: [1, 2\n")
    key = next(iter(k for k in body if k != "template"))
    answers = []
    for name in (str(secret), str(world.folder / "missing.yaml"), "/etc/passwd"):
        before = counts(world)
        answer = world.demo.call("POST", path, json={k: (name if v == "{}" else v) for k, v in body.items()})
        assert answer.status_code == 400, (name, answer.status_code, answer.text[:300])
        detail = one_line(answer)
        assert key in detail and "secret" not in detail and "hunter2" not in detail, detail
        assert counts(world) == before  # no job started
        answers.append(detail.replace(name, "NAME"))
    assert len(set(answers)) == 1, answers


def test_tape_measures_from_the_form_are_kept_as_a_scan(world):
    """The scan page's tape form sends the library's tape format as tape.json (method tape): kept, readable."""
    made = world.demo.call("POST", "/api/cases", json={"reference": "TAPE-1", "level": "transtibial", "side": "right"})
    assert made.status_code == 200, made.text
    measures = {"schema_version": 1, "level": "transtibial", "side": "right", "reference": "mpt",
                "residual_length_mm": 170, "interval_mm": 30, "circumferences_mm": [360, 330, 300, 270, 240, 210],
                "ap_width_mm": 110, "ml_width_mm": 100, "distal_shape": "round"}
    kept = world.demo.call("POST", "/api/cases/TAPE-1/scans", data={"method": "tape"},
                           files={"file": ("tape.json", json.dumps(measures).encode(), "application/json")})
    assert kept.status_code == 200, kept.text
    view = world.demo.call("GET", f"/api/cases/TAPE-1/scans/{kept.json()['id']}")
    assert view.status_code == 200 and 140 < view.json()["length_mm"] < 200
    bad = world.demo.call("POST", "/api/cases/TAPE-1/scans", data={"method": "tape"},
                          files={"file": ("tape.json", json.dumps({**measures, "interval_mm": 0.5}).encode(), "x")})
    assert bad.status_code == 400 and "interval_mm" in one_line(bad)
