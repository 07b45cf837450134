"""The clinic web application: the same operations as the command line, over HTTP, with users.

Every route translates: it reads the request, checks who is asking (socketcad.clinic.users decides), calls one
operation of socketcad.operations and answers its typed result as JSON. Bad input is a 4xx with one line naming
the field: 400 (InputError), 401 (not signed in), 403 (role, or a write without the session's CSRF token), 404 (no
such case for this user: another clinic's is told alike), 413 (too large), 422 (a malformed request), 429 (sign-in
throttled). Slow operations run as jobs in worker processes (socketcad.web.jobs); their progress is streamed.

The front end (a single page built from npm packages by `make`, shipped in the package under static/) is read into
memory when the app starts: no request path reaches the file system.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import tempfile
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from socketcad import operations as ops
from socketcad.clinic.store import Store
from socketcad.clinic.users import permits
from socketcad.errors import AccessError, InputError, UnknownError, every_error, printable
from socketcad.web.jobs import Jobs, JobState
from socketcad.web.security import BodyLimit, SecurityHeaders, SignInThrottle

__all__ = ["COOKIE", "create_app"]

log = logging.getLogger("socketcad.web")
COOKIE = "socketcad_session"
CSRF_HEADER = "x-csrf-token"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".map": "application/json", ".svg": "image/svg+xml"}


class Refused(Exception):
    """An HTTP refusal with its status and one-line message (not signed in, throttled, CSRF)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The built front end: file name -> (bytes, media type), read once."""
    folder = resources.files("socketcad.web") / "static"
    files = {}
    if folder.is_dir():
        for entry in folder.iterdir():
            suffix = Path(entry.name).suffix
            if entry.is_file() and suffix in STATIC_TYPES:
                files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return files


def create_app(store: Store, jobs: Jobs | None = None, *, secure_cookies: bool = False,
               mesh_cache: Path | None = None) -> FastAPI:
    """The application over ``store``. ``jobs``: the worker processes (default: two, on the store).
    ``secure_cookies``: mark the session cookie Secure (behind HTTPS). ``mesh_cache``: kept tissue meshes."""
    import socketcad

    owned = jobs is None  # made here, so closed here when the app stops
    jobs = jobs or Jobs(store.data_folder, store.engine.url.render_as_string(hide_password=False)
                        if store.engine.url.get_backend_name() != "sqlite" else None)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        if owned:
            jobs.close()

    app = FastAPI(title="socketcad", version=socketcad.__version__, openapi_url="/api/openapi.json",
                  docs_url="/api/docs", redoc_url=None, lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)  # outermost: a too large body is refused before anything reads it
    throttle = SignInThrottle()
    static = _static_files()
    app.state.store, app.state.jobs = store, jobs

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        status = 403 if isinstance(exc, AccessError) else 404 if isinstance(exc, UnknownError) else 400
        return JSONResponse({"detail": printable(str(exc))}, status_code=status)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": printable(every_error(exc))}, status_code=422)

    # --- who is asking -----------------------------------------------------------------------------------------

    def account(request: Request) -> ops.Account:
        found = ops.session_account(store, request.cookies.get(COOKIE, ""))
        if found is None:
            raise Refused(401, "not signed in: sign in first")
        return found

    def writer(request: Request, who: ops.Account = Depends(account)) -> ops.Account:
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), who.csrf_token.encode()):
            raise Refused(403, f"the request lacks this session's CSRF token (header {CSRF_HEADER}): reload the page")
        return who

    def case(who: ops.Account, reference: str, permission: str, revision: int | None = None) -> None:
        ops.case_access(store, who, reference, permission, revision)

    # --- session ------------------------------------------------------------------------------------------------

    @app.post("/api/session", response_model=ops.Account)
    def sign_in(body: dict[str, Any], request: Request, response: Response):
        username = str(body.get("username", ""))[:64]
        client = request.client.host if request.client else "?"
        wait = throttle.wait_s(username, client)
        if wait > 0:
            raise Refused(429, f"too many failed sign-ins: try again in {wait / 60:.0f} minutes")
        try:
            signed = ops.sign_in(store, ops.SignInRequest(username=username, password=str(body.get("password", ""))))
        except InputError:
            throttle.failed(username, client)
            raise
        throttle.succeeded(username)
        response.set_cookie(COOKIE, signed.token, httponly=True, samesite="strict", secure=secure_cookies,
                            path="/", max_age=12 * 3600)
        return signed.account

    @app.get("/api/session", response_model=ops.Account)
    def me(who: ops.Account = Depends(account)):
        return who

    @app.delete("/api/session")
    def sign_out(request: Request, response: Response, who: ops.Account = Depends(writer)):
        ops.end_session(store, request.cookies.get(COOKIE, ""))
        response.delete_cookie(COOKIE, path="/")
        return {"signed_out": who.username}

    @app.get("/api/options")
    def options(who: ops.Account = Depends(account)):
        """What the forms offer: levels, sides, templates and landmarks by level, components, checklist."""
        from socketcad.anatomy.landmarks import known_landmarks
        from socketcad.clinic.cases import LEVELS as levels, METHODS, SIDES
        from socketcad.clinic.fitting import FEEDBACK_AREAS
        from socketcad.clinic.records import CHECKLIST, K_LEVELS
        from socketcad.design.templates import TEMPLATES
        from socketcad.geometry.units import UNITS

        catalogue = ops.catalogue()
        return {"levels": levels, "sides": SIDES, "k_levels": K_LEVELS, "units": list(UNITS), "methods": METHODS,
                "templates": {level: [name for name, (lv, _) in TEMPLATES.items() if lv == level] for level in levels},
                "landmarks": {level: list(known_landmarks(level)) for level in levels},
                "feedback_areas": {level: [*known_landmarks(level), *FEEDBACK_AREAS] for level in levels},
                "liners": [x.id for x in catalogue.liners], "closures": [x.id for x in catalogue.closures],
                "adapters": [x.id for x in catalogue.adapters], "materials": [x.id for x in catalogue.materials],
                "checklist": CHECKLIST}

    # --- cases --------------------------------------------------------------------------------------------------

    @app.get("/api/cases", response_model=ops.CaseList)
    def case_list(q: str = "", who: ops.Account = Depends(account)):
        if not permits(who.role, "read"):
            raise AccessError(f"a {who.role} may not read case records")
        return ops.cases(store, who.clinic_id, q[:64])

    @app.post("/api/cases", response_model=ops.CaseOpened)
    def case_new(body: dict[str, Any], who: ops.Account = Depends(writer)):
        if not permits(who.role, "write"):
            raise AccessError(f"a {who.role} may not open cases")
        return ops.new_case(store, ops.NewCaseRequest(**body), who.username, who.clinic_id)

    @app.get("/api/cases/{reference}")
    def case_show(reference: str, who: ops.Account = Depends(account)):
        case(who, reference, "read")
        return ops.case_history(store, reference)

    @app.post("/api/cases/{reference}/evaluations", response_model=ops.EvaluationSaved)
    def evaluation_new(reference: str, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "write")
        return ops.evaluate(store, ops.EvaluateRequest(reference=reference, fields=body), who.username)

    @app.post("/api/cases/{reference}/scans", response_model=ops.ScanKept)
    def scan_new(reference: str, file: UploadFile = File(...), method: str = Form("scan"), units: str = Form(""),
                 anterior: str = Form(""), who: ops.Account = Depends(writer)):
        case(who, reference, "write")
        upload = _upload(file)
        return ops.add_scan(store, ops.AddScanRequest(reference=reference, source=upload, method=method,
                                                      units=units or None, anterior=anterior or None), who.username)

    @app.get("/api/cases/{reference}/scans/{scan}", response_model=ops.ScanView)
    def scan_show(reference: str, scan: int, who: ops.Account = Depends(account)):
        case(who, reference, "read")
        return ops.scan_view(store, reference, scan)

    @app.get("/api/cases/{reference}/scans/{scan}/section", response_model=ops.SectionView)
    def scan_section(reference: str, scan: int, level_mm: float, who: ops.Account = Depends(account)):
        case(who, reference, "read")
        return ops.section(store, reference, scan, level_mm)

    @app.post("/api/cases/{reference}/scans/{scan}/landmarks", response_model=ops.LandmarkMoved)
    def landmark_move(reference: str, scan: int, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "write")
        request = ops.MoveLandmarkRequest(**_fields(body, reference=reference, scan=scan))
        return ops.move_landmark(store, request, who.username)

    @app.post("/api/cases/{reference}/preview", response_model=ops.Preview)
    def plan_preview(reference: str, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "read")
        return ops.preview(store, ops.PreviewRequest(**_fields(body, reference=reference)))

    @app.post("/api/cases/{reference}/proposal", response_model=ops.ProposalView)
    def proposal(reference: str, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "read")
        return ops.propose(store, ops.ProposeRequest(**_fields(body, reference=reference)))

    @app.post("/api/cases/{reference}/revisions", response_model=JobState)
    def revision_new(reference: str, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "write")
        request = ops.DesignRequest(**_fields(body, reference=reference))  # refused here, before a job starts
        return jobs.submit("save_design", request.model_dump(mode="json", exclude_unset=True), who.username,
                           who.clinic_id, reference).view()

    @app.get("/api/cases/{reference}/revisions/{revision}/socket", response_model=ops.SocketView)
    def socket_show(reference: str, revision: int, who: ops.Account = Depends(account)):
        case(who, reference, "read", revision)
        return ops.socket_view(store, reference, revision)

    @app.get("/api/cases/{reference}/revisions/{revision}/files/{name}")
    def revision_file(reference: str, revision: int, name: str, who: ops.Account = Depends(account)):
        case(who, reference, "read", revision)
        found = ops.download(store, reference, revision, name)
        return Response(found.data, media_type=found.media_type,
                        headers={"content-disposition": f'attachment; filename="{found.filename}"'})

    @app.get("/api/cases/{reference}/revisions/{revision}/report.{kind}")
    def revision_report(reference: str, revision: int, kind: str, who: ops.Account = Depends(account)):
        case(who, reference, "read", revision)
        if kind not in ("html", "pdf"):
            raise UnknownError(f"report.{kind[:10]}: the report is report.html or report.pdf")
        with tempfile.TemporaryDirectory(prefix="socketcad-report-") as folder:
            html = Path(folder) / "report.html"
            written = ops.report_case(store, ops.CaseReportRequest(reference=reference, revision=revision,
                                                                   output=html, pdf=kind == "pdf"))
            data = Path(written.pdf if kind == "pdf" else written.html).read_bytes()
        name = ops.download_name(reference, revision, f"report.{kind}")
        return Response(data, media_type="application/pdf" if kind == "pdf" else "text/html; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    @app.post("/api/cases/{reference}/revisions/{revision}/analysis", response_model=JobState)
    def analysis_new(reference: str, revision: int, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "write", revision)
        fields = _fields(body, reference=reference, revision=revision, mesh_cache=mesh_cache)
        request = ops.AnalyseRevisionRequest(**fields)
        return jobs.submit("analyse_revision", request.model_dump(mode="json"), who.username, who.clinic_id,
                           reference).view()

    @app.get("/api/cases/{reference}/revisions/{revision}/analysis", response_model=ops.AnalysisView)
    def analysis_show(reference: str, revision: int, load_case: str | None = None, map: str = "pressure",
                      who: ops.Account = Depends(account)):
        case(who, reference, "read", revision)
        if map not in ("pressure", "shear"):
            raise InputError(f"map {map[:20]!r}: pressure or shear")
        return ops.analysis_view(store, reference, revision, load_case, map)

    @app.post("/api/cases/{reference}/revisions/{revision}/fittings", response_model=JobState)
    def fitting_new(reference: str, revision: int, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "write", revision)
        request = ops.FitRequest(**_fields(body, reference=reference, revision=revision))
        return jobs.submit("fit", request.model_dump(mode="json"), who.username, who.clinic_id, reference).view()

    @app.post("/api/cases/{reference}/revisions/{revision}/fabrications", response_model=ops.FabricationSaved)
    def fabrication_new(reference: str, revision: int, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "fabricate", revision)
        request = ops.FabricateRequest(**_fields(body, reference=reference, revision=revision))
        return ops.fabricate(store, request, who.username)

    @app.post("/api/cases/{reference}/revisions/{revision}/deliveries", response_model=ops.DeliverySaved)
    def delivery_new(reference: str, revision: int, body: dict[str, Any], who: ops.Account = Depends(writer)):
        case(who, reference, "write", revision)
        request = ops.DeliverRequest(**_fields(body, reference=reference, revision=revision))
        return ops.deliver(store, request, who.username)

    @app.get("/api/cases/{reference}/diff", response_model=ops.DiffView)
    def revision_diff(reference: str, first: int, second: int, who: ops.Account = Depends(account)):
        case(who, reference, "read")
        return ops.diff_view(store, reference, first, second)

    @app.get("/api/cases/{reference}/followups/newest", response_model=ops.FollowUpView)
    def followup_show(reference: str, who: ops.Account = Depends(account)):
        case(who, reference, "read")
        return ops.followup_view(store, reference)

    @app.post("/api/cases/{reference}/followups", response_model=ops.FollowUpSaved)
    def followup_new(reference: str, file: UploadFile = File(...), socks_ply: int = Form(0), units: str = Form(""),
                     who: ops.Account = Depends(writer)):
        case(who, reference, "write")
        return ops.follow_up(store, ops.FollowUpRequest(reference=reference, source=_upload(file), socks_ply=socks_ply,
                                                        units=units or None), who.username)

    # --- jobs ---------------------------------------------------------------------------------------------------

    def job_of(job_id: str, who: ops.Account):
        job = jobs.get(job_id, who.clinic_id)
        if job is None:
            raise UnknownError(f"no job {job_id[:40]!r}: it finished over an hour ago, or the server restarted")
        return job

    @app.get("/api/jobs/{job_id}", response_model=JobState)
    def job_show(job_id: str, who: ops.Account = Depends(account)):
        return job_of(job_id, who).view()

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(job_id: str, who: ops.Account = Depends(account)):
        job = job_of(job_id, who)

        async def stream():
            seen = -1
            while True:
                if job.version != seen:
                    seen = job.version
                    yield f"data: {job.view().model_dump_json()}\n\n"
                    if job.state in ("done", "failed"):
                        return
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream")

    # --- users --------------------------------------------------------------------------------------------------

    @app.post("/api/users", response_model=ops.UserAdded)
    def user_new(body: dict[str, Any], who: ops.Account = Depends(writer)):
        if not permits(who.role, "users"):
            raise AccessError(f"a {who.role} may not add users")
        fields = {k: body.get(k) for k in ("username", "password", "role")}
        return ops.add_user(store, ops.AddUserRequest(**fields, clinic=who.clinic), who.username)

    # --- the front end ------------------------------------------------------------------------------------------

    def page(name: str) -> Callable:
        def serve():
            if name not in static:
                return Response("the front end is not built: run `make` (it builds frontend/ with npm)",
                                status_code=503, media_type="text/plain")
            data, media_type = static[name]
            return Response(data, media_type=media_type)
        return serve

    app.get("/", include_in_schema=False)(page("index.html"))
    for name in static:
        app.get(f"/static/{name}", include_in_schema=False)(page(name))
    return app


SERVER_FILES = ("spec_file", "form_file", "mesh_cache", "output", "map_file")  # request fields naming a server path


def _fields(body: dict[str, Any], **given: Any) -> dict[str, Any]:
    """A request's fields: the body's and those the address gives (case, scan, revision). The body may not give
    those again, nor name a file for the server to read: a plan or a spec comes as data, never as a path."""
    for key in body:
        if key in SERVER_FILES:
            raise InputError(f"{printable(key)[:40]}: the server reads no file a request names; give the data itself")
        if key in given:
            raise InputError(f"{printable(key)[:40]}: the address gives it; leave it out of the request body")
    if body.get("plan") is not None and not isinstance(body["plan"], dict):
        raise InputError("plan: give the plan itself (an object of its fields), not a file name")
    return {**body, **given}


def _upload(file: UploadFile) -> ops.Upload:
    """An uploaded file as the operations take it: its name (no folders) and bytes, the format sniffed from the
    content where the name's suffix disagrees or is missing."""
    from socketcad.geometry.formats import sniff_format

    data = file.file.read()
    name = Path(file.filename or "upload").name or "upload"
    sniffed = sniff_format(data)
    if sniffed is not None and Path(name).suffix.lower().lstrip(".") != sniffed:
        name = f"{Path(name).stem or 'upload'}.{sniffed}"
    if not name.isprintable() or name in (".", ".."):
        raise InputError(f"file {printable(name)[:60]!r}: give the file a plain name")
    return ops.Upload(filename=name[-255:], data=data)
