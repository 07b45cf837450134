"""Who may do what (socketcad.clinic.users): add a user, sign in and out, the account of a session, and the check
that a case is the user's clinic's and their role permits the action."""

from __future__ import annotations

from pydantic import Field

from socketcad.clinic.store import Store
from socketcad.clinic.users import Account
from socketcad.operations._common import Request, Result

__all__ = ["Account", "AddUserRequest", "DemoClinic", "demo_clinic", "SignInRequest", "SignedIn", "UserAdded", "add_user", "case_access",
           "end_session", "session_account", "sign_in"]


class AddUserRequest(Request):
    username: str
    password: str = Field(repr=False)
    role: str  # prosthetist, technician or admin
    clinic: str  # made if new


class UserAdded(Result):
    username: str
    role: str
    clinic: str


def add_user(store: Store, request: AddUserRequest, actor: str) -> UserAdded:
    """Add a user to a clinic (the first clinic of a store takes the cases made before it had clinics)."""
    from socketcad.clinic.users import add_user as add

    account = add(store, request.username, request.password, request.role, request.clinic, actor=actor)
    return UserAdded(username=account.username, role=account.role, clinic=account.clinic)


class SignInRequest(Request):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024, repr=False)


class SignedIn(Result):
    token: str = Field(repr=False)  # the session cookie's value: shown to nobody but the browser
    account: Account


def sign_in(store: Store, request: SignInRequest) -> SignedIn:
    """A new session for a user whose password matches; one InputError for any wrong name or password."""
    from socketcad.clinic.users import sign_in as start

    token, account = start(store, request.username, request.password)
    return SignedIn(token=token, account=account)


def session_account(store: Store, token: str) -> Account | None:
    """The account of a session token; None when it is unknown or expired."""
    from socketcad.clinic.users import session_account as find

    return find(store, token)


def end_session(store: Store, token: str) -> None:
    from socketcad.clinic.users import end_session as end

    end(store, token)


def case_access(store: Store, account: Account, reference: str, permission: str, revision: int | None = None) -> None:
    """AccessError unless the role permits ``permission``; UnknownError unless the case is the account's clinic's
    (and ``revision`` one of its revisions)."""
    from socketcad.clinic.users import case_access as check

    check(store, account, reference, permission, revision)


class DemoClinic(Result):
    """The demo clinic in a store: the user to sign in as, and its case."""

    username: str
    password: str  # the demo user's published password: a demo store holds no patient
    reference: str
    created: bool  # False: it was there already, nothing changed


DEMO = {"clinic": "Demo clinic", "username": "demo", "password": "socketcad-demo", "reference": "DEMO-TT-1"}


def demo_clinic(store: Store) -> DemoClinic:
    """Put the demo clinic in a store that has no users yet: a prosthetist 'demo', and a right transtibial case
    with the AmpScan sample scan, an evaluation (K3) and a TSB test-socket revision. Nothing if the user is there."""
    from sqlalchemy import select

    from socketcad.clinic.models import User
    from socketcad.operations._clinic import (AddScanRequest, DesignRequest, EvaluateRequest, NewCaseRequest,
                                              add_scan, evaluate, new_case, save_design)
    from socketcad.operations._design import SpecFields

    with store.transaction() as db:
        if db.scalar(select(User.id).where(User.username == DEMO["username"])) is not None:
            return DemoClinic(username=DEMO["username"], password="", reference=DEMO["reference"], created=False)
    account = add_user(store, AddUserRequest(username=DEMO["username"], password=DEMO["password"], role="prosthetist",
                                             clinic=DEMO["clinic"]), "socketcad demo")
    from socketcad.clinic.models import Clinic

    with store.transaction() as db:
        clinic_id = db.scalar(select(Clinic.id).where(Clinic.name == account.clinic))
    actor, reference = DEMO["username"], DEMO["reference"]
    new_case(store, NewCaseRequest(reference=reference, level="transtibial", side="right"), actor, clinic_id)
    evaluate(store, EvaluateRequest(reference=reference, fields={
        "k_level": "K3", "sensitive_areas": ["fibular_head"], "skin": "intact, incision healed",
        "goals": "walk to work, hike at weekends", "strength_mrc": {"knee_extension": 5},
        "range_of_motion_deg": {"knee_flexion": 120}}), actor)
    # the sample's recorded anterior is the file's -y (anatomy.samples): a clinic gives it with the upload
    add_scan(store, AddScanRequest(reference=reference, source="sample:ampscan-tt-scan", anterior=(0.0, -1.0, 0.0)),
             actor)
    save_design(store, DesignRequest(reference=reference, template="tsb", spec=SpecFields(
        liner="silicone_seal_in_6", closure="seal_in_suction", material="petg", stage="test"),
        note="demo: the TSB template"), actor)
    return DemoClinic(username=DEMO["username"], password=DEMO["password"], reference=reference, created=True)
