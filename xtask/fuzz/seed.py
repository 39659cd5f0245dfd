"""Seeds a fresh Conman installation through its HTTP API for the `fuzz`
gate step (xtask/src/fuzz.rs), so that the path parameters schemathesis
sends name real objects.

Usage: seed.py BASE_URL ADMIN_EMAIL PASSWORD

Prints `KEY=VALUE` lines on stdout: ids shared by both runs (APP_ID,
PROFILE_ID, SECRET_KEY, INVITE_ID, JOB_ID, REL_ID) and, per caller (`USER_` /
`ADMIN_` prefix), the token, the user id and the caller's own workspace,
changeset and comment. Any refusal stops the script with the answer.
"""

import sys

import requests

BASE, ADMIN_EMAIL, PASSWORD = sys.argv[1], sys.argv[2], sys.argv[3]
USER_EMAIL = "user@fuzz.example"


def call(method, path, token=None, body=None, expect=(200, 201)):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = requests.request(method, BASE + path, json=body, headers=headers, timeout=30)
    if r.status_code not in expect:
        sys.exit(f"seed: {method} {path} answered {r.status_code}: {r.text}")
    return r.json().get("data")


def login(email):
    return call("POST", "/api/auth/login", body={"email": email, "password": PASSWORD})["token"]


def own_objects(token, app, label):
    """The caller's default workspace with a file, a changeset and a comment."""
    me = call("GET", "/api/me", token)["user"]["id"]
    workspaces = call("GET", f"/api/apps/{app}/workspaces?limit=100", token)
    ws = next(w["id"] for w in workspaces if w["owner_id"] == me and w["is_default"])
    call("PUT", f"/api/apps/{app}/workspaces/{ws}/files", token,
         {"path": "config/app.yaml", "content": "cmVwbGljYXM6IDIK"})
    cs = call("POST", f"/api/apps/{app}/changesets", token, {"workspace_id": ws, "title": f"{label} change"})["id"]
    comment = call("POST", f"/api/apps/{app}/changesets/{cs}/comments", token, {"body": "first"})["id"]
    return {"ID": me, "WS_ID": ws, "CS_ID": cs, "COMMENT_ID": comment}


def main():
    admin = login(ADMIN_EMAIL)
    app = call("POST", "/api/apps", admin, {"name": "fuzz"})["id"]
    invite = call("POST", f"/api/apps/{app}/invites", admin, {"email": USER_EMAIL, "role": "user"})
    user = call("POST", "/api/auth/accept-invite",
                body={"token": invite["token"], "name": "Fuzz User", "password": PASSWORD})["token"]
    pending = call("POST", f"/api/apps/{app}/invites", admin, {"email": "pending@fuzz.example", "role": "reviewer"})
    profile = call("POST", f"/api/apps/{app}/runtime-profiles", admin, {
        "name": "staging",
        "kind": "persistent_env",
        "env_vars": {"LOG_LEVEL": {"type": "string", "value": "info"}},
        "secrets": {"API_KEY": "fuzz-secret-value"},
    })
    job = call("POST", f"/api/apps/{app}/jobs", admin, {"type": "gate_submit"})["job"]
    release = call("POST", f"/api/apps/{app}/releases", admin, {"title": "fuzz"})
    values = {
        "APP_ID": app,
        "PROFILE_ID": profile["id"],
        "SECRET_KEY": "API_KEY",
        "INVITE_ID": pending["id"],
        "JOB_ID": job["id"],
        "REL_ID": release["id"],
        "USER_TOKEN": user,
        "ADMIN_TOKEN": admin,
    }
    for label, token in (("USER", user), ("ADMIN", admin)):
        for key, value in own_objects(token, app, label.lower()).items():
            values[f"{label}_{key}"] = value
    for key, value in values.items():
        print(f"{key}={value}")


main()
