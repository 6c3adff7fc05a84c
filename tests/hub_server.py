"""A local HTTP server speaking the part of the Hugging Face Hub API that ``huggingface_hub`` uses
to create repos, commit files (regular uploads, base64 in NDJSON) and download them.

Repos live in memory: each branch is a list of commits, each commit a full snapshot {path: bytes}.
A commit is applied whole or not at all. ``fail_next_commit`` makes the next commit answer 500.

    python tests/hub_server.py PORT        # stand-alone, for trying push_to_hub.py by hand
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

TOKEN_PREFIX = "hf_"


class HubState:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"private": bool, "branches": {name: [commit, ...]}}
        self.lock = threading.Lock()
        self.fail_next_commit = False
        self.requests: list[tuple[str, str]] = []

    @staticmethod
    def new_commit(files: dict, message: str, parent: str | None) -> dict:
        h = hashlib.sha1((parent or "").encode() + message.encode())
        for p in sorted(files):
            h.update(p.encode() + hashlib.sha1(files[p]).digest())
        return {"oid": h.hexdigest(), "files": files, "message": message}

    def resolve(self, repo_id: str, rev: str):
        """(commit, error_code) for a branch name or a commit oid."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return None, "RepoNotFound"
        if rev in repo["branches"]:
            return repo["branches"][rev][-1], None
        for commits in repo["branches"].values():
            for c in commits:
                if c["oid"] == rev:
                    return c, None
        return None, "RevisionNotFound"


def _etag(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubHandler(BaseHTTPRequestHandler):
    state: HubState  # set on the subclass made by start_server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    # --- helpers -------------------------------------------------------------------------------
    def _send(self, code: int, body=b"", headers=None, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, error_code: str, message: str):
        self._send(code, {"error": message}, {"X-Error-Code": error_code, "X-Error-Message": message})

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith(f"Bearer {TOKEN_PREFIX}"):
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False
        return True

    # --- routes --------------------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = urlparse(self.path).path
        self.state.requests.append((self.command, path))
        if path == "/api/whoami-v2":
            if self._authorized():
                self._send(200, {"type": "user", "name": "user", "auth": {"accessToken": {"role": "write"}}})
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m:
            return self._model_info(m.group(1), unquote(m.group(2) or "main"))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            return self._tree(m.group(1), unquote(m.group(2)), unquote(m.group(3) or ""))
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve(m.group(1), unquote(m.group(2)), unquote(m.group(3)))
        self._error(404, "NotFound", f"no route for GET {path}")

    def do_POST(self):
        path = urlparse(self.path).path
        self.state.requests.append((self.command, path))
        body = self._body()
        if path == "/api/validate-yaml":  # anonymous on the real Hub too
            meta = json.loads(body or b"{}")
            ok = isinstance(meta.get("content"), str) and "model-index" in meta["content"]
            return self._send(200 if ok else 400, {"errors": [] if ok else [{"message": "no model-index"}],
                                                   "warnings": []})
        if not self._authorized():
            return
        if path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/(.+)", path)
        if m:
            # like the Hub: the oid of a file already at that revision lets the client drop unchanged files
            # (and skip a commit that would change nothing)
            head, _ = self.state.resolve(m.group(1), unquote(m.group(2)))
            existing = head["files"] if head else {}
            files = json.loads(body)["files"]
            return self._send(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": _etag(existing[f["path"]]) if f["path"] in existing else None} for f in files]})
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/(.+)", path)
        if m:
            return self._commit(m.group(1), unquote(m.group(2)), body)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/branch/(.+)", path)
        if m:
            return self._create_branch(m.group(1), unquote(m.group(2)), json.loads(body or b"{}"))
        self._error(404, "NotFound", f"no route for POST {path}")

    # --- handlers ------------------------------------------------------------------------------
    def _create_repo(self, payload):
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        url = f"http://{self.headers['Host']}/{repo_id}"
        with self.state.lock:
            if repo_id in self.state.repos:
                return self._send(409, {"error": "You already created this model repo", "url": url})
            first = HubState.new_commit({".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                                        "initial commit", None)
            self.state.repos[repo_id] = {"private": payload.get("visibility") == "private" or bool(payload.get("private")),
                                         "branches": {"main": [first]}}
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def _create_branch(self, repo_id, branch, payload):
        with self.state.lock:
            start, err = self.state.resolve(repo_id, payload.get("startingPoint", "main"))
            if err:
                return self._error(404, err, f"{repo_id}: {err}")
            repo = self.state.repos[repo_id]
            if branch in repo["branches"]:
                return self._error(409, "BranchExists", f"branch {branch} already exists")
            repo["branches"][branch] = [start]
        self._send(200, {})

    def _commit(self, repo_id, rev, body):
        with self.state.lock:
            repo = self.state.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if rev not in repo["branches"]:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            if self.state.fail_next_commit:
                self.state.fail_next_commit = False
                return self._error(500, "InternalError", "commit refused by the test server")
            files = dict(repo["branches"][rev][-1]["files"])
            summary = ""
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if item["key"] == "header":
                    summary = item["value"]["summary"]
                elif item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    files.pop(item["value"]["path"], None)
                else:
                    return self._error(400, "BadRequest", f"unsupported commit operation {item['key']}")
            parent = repo["branches"][rev][-1]["oid"]
            commit = HubState.new_commit(files, summary, parent)
            repo["branches"][rev].append(commit)
        host = self.headers["Host"]
        self._send(200, {"commitUrl": f"http://{host}/{repo_id}/commit/{commit['oid']}",
                         "commitOid": commit["oid"], "pullRequestUrl": None})

    def _model_info(self, repo_id, rev):
        commit, err = self.state.resolve(repo_id, rev)
        if err:
            return self._error(404, err, f"{repo_id}@{rev}: {err}")
        self._send(200, {"id": repo_id, "modelId": repo_id, "sha": commit["oid"],
                         "private": self.state.repos[repo_id]["private"], "siblings": [
                             {"rfilename": p, "size": len(b)} for p, b in sorted(commit["files"].items())],
                         "tags": [], "downloads": 0, "likes": 0, "library_name": "transformers"})

    def _tree(self, repo_id, rev, prefix):
        commit, err = self.state.resolve(repo_id, rev)
        if err:
            return self._error(404, err, f"{repo_id}@{rev}: {err}")
        entries, dirs = [], set()
        pre = prefix.rstrip("/") + "/" if prefix else ""
        for p, b in sorted(commit["files"].items()):
            if not p.startswith(pre):
                continue
            rest = p[len(pre):]
            if "/" in rest:
                d = pre + rest.split("/")[0]
                if d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "path": d, "oid": "0" * 40, "size": 0})
            else:
                entries.append({"type": "file", "path": p, "oid": _etag(b), "size": len(b)})
        self._send(200, entries)

    def _resolve(self, repo_id, rev, filename):
        commit, err = self.state.resolve(repo_id, rev)
        if err:
            return self._error(404, err, f"{repo_id}@{rev}: {err}")
        data = commit["files"].get(filename)
        if data is None:
            return self._send(404, {"error": "Entry not found"}, {
                "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": commit["oid"]})
        self._send(200, data, {"X-Repo-Commit": commit["oid"], "ETag": f'"{_etag(data)}"'},
                   content_type="application/octet-stream")


def start_server(port: int = 0):
    """Start the server in a thread; returns (server, state, endpoint URL)."""
    state = HubState()
    handler = type("Handler", (HubHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state, f"http://127.0.0.1:{server.server_address[1]}"


if __name__ == "__main__":
    import sys
    import time

    srv, _, url = start_server(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.shutdown()
