"""A local HTTP server speaking the part of the Hugging Face Hub API that ``huggingface_hub`` (and
``datasets`` through ``HfFileSystem``) uses to create model and dataset repos, commit files (regular
uploads, base64 in NDJSON), list and describe them, and download them.

Dataset repos are stored under the key ``datasets/<owner>/<name>``, model repos under ``<owner>/<name>``.

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
from urllib.parse import parse_qs, unquote, urlparse

TOKEN_PREFIX = "hf_"



def validate_card_yaml(content, repo_type: str = "model") -> list[str]:
    """What the Hub's YAML check would refuse in a card's metadata: the front matter must be a YAML mapping,
    and a model card's ``model-index``, where it has one (a card without evaluations, e.g. a pretrained
    backbone's, may leave it out), must parse into evaluation results (task type, dataset type and name,
    metric type and a numeric value each), as huggingface_hub reads it."""
    import yaml
    from huggingface_hub.repocard_data import model_index_to_eval_results

    if not isinstance(content, str):
        return ["no content"]
    m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    if not m:
        return ["no YAML front matter"]
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as err:
        return [f"invalid YAML: {err}"]
    if not isinstance(data, dict):
        return ["the metadata is not a mapping"]
    if repo_type == "dataset":
        return []
    if "model-index" not in data:
        return []
    index = data["model-index"]
    if not isinstance(index, list) or not index:
        return ["model-index is not a list of models"]
    try:
        _, results = model_index_to_eval_results(index)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        return [f"model-index does not parse: {err!r}"]
    errors = []
    for r in results:
        if not (r.task_type and r.dataset_type and r.dataset_name and r.metric_type):
            errors.append(f"an evaluation result lacks task, dataset or metric type: {r}")
        if not isinstance(r.metric_value, (int, float)):
            errors.append(f"metric value {r.metric_value!r} is not a number")
    return errors

class HubState:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"private": bool, "branches": {name: [commit, ...]}}
        self.lock = threading.Lock()
        self.fail_next_commit = False
        self.requests: list[tuple[str, str]] = []
        self.lfs: dict[str, bytes] = {}  # sha256 -> content, uploaded through the LFS batch API

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


def _key(kind: str, repo_id: str) -> str:
    """Where a repo is stored: model repos under their id, dataset repos under datasets/<id>."""
    return repo_id if kind == "models" else f"datasets/{repo_id}"


def _upload_mode(path: str) -> str:
    """Dataset shards go through LFS, as on the Hub (``datasets`` deletes its temporary shard files once
    their LFS upload is done); everything else is a regular upload."""
    return "lfs" if path.endswith(".parquet") else "regular"


def _oid(path: str, data: bytes) -> str:
    """The oid the client compares with its own to skip unchanged files: sha256 for LFS, git's sha1 else."""
    return hashlib.sha256(data).hexdigest() if _upload_mode(path) == "lfs" else _etag(data)


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
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        self.state.requests.append((self.command, path))
        if path == "/api/whoami-v2":
            if self._authorized():
                self._send(200, {"type": "user", "name": "user", "auth": {"accessToken": {"role": "write"}}})
            return
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m:
            return self._model_info(_key(m.group(1), m.group(2)), unquote(m.group(3) or "main"))
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            return self._tree(_key(m.group(1), m.group(2)), unquote(m.group(3)), unquote(m.group(4) or ""), recursive)
        m = re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve(_key("datasets" if m.group(1) else "models", m.group(2)), unquote(m.group(3)),
                                 unquote(m.group(4)))
        self._error(404, "NotFound", f"no route for GET {path}")

    def do_POST(self):
        path = urlparse(self.path).path
        self.state.requests.append((self.command, path))
        body = self._body()
        if path == "/api/validate-yaml":  # anonymous on the real Hub too
            meta = json.loads(body or b"{}")
            errors = validate_card_yaml(meta.get("content"), meta.get("repoType", "model"))
            return self._send(200 if not errors else 400, {"errors": [{"message": e} for e in errors], "warnings": []})
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/paths-info/([^/]+)", path)
        if m:  # read-only, anonymous for public repos
            return self._paths_info(_key(m.group(1), m.group(2)), unquote(m.group(3)), body)
        if not self._authorized():
            return
        if path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"))
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/preupload/(.+)", path)
        if m:
            # like the Hub: the oid of a file already at that revision lets the client drop unchanged files
            # (and skip a commit that would change nothing)
            head, _ = self.state.resolve(_key(m.group(1), m.group(2)), unquote(m.group(3)))
            existing = head["files"] if head else {}
            files = json.loads(body)["files"]
            return self._send(200, {"files": [
                {"path": f["path"], "uploadMode": _upload_mode(f["path"]), "shouldIgnore": False,
                 "oid": _oid(f["path"], existing[f["path"]]) if f["path"] in existing else None} for f in files]})
        m = re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m:  # LFS upload negotiation: where to PUT each object not stored yet
            host = self.headers["Host"]
            objects = [{"oid": o["oid"], "size": o["size"], **({} if o["oid"] in self.state.lfs else {
                "actions": {"upload": {"href": f"http://{host}/lfs-upload/{o['oid']}"}}})}
                for o in json.loads(body)["objects"]]
            return self._send(200, {"transfer": "basic", "objects": objects})
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/commit/(.+)", path)
        if m:
            return self._commit(_key(m.group(1), m.group(2)), unquote(m.group(3)), body)
        m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/branch/(.+)", path)
        if m:
            return self._create_branch(_key(m.group(1), m.group(2)), unquote(m.group(3)), json.loads(body or b"{}"))
        self._error(404, "NotFound", f"no route for POST {path}")

    def do_PUT(self):
        path = urlparse(self.path).path
        self.state.requests.append((self.command, path))
        body = self._body()
        m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if not m:
            return self._error(404, "NotFound", f"no route for PUT {path}")
        if hashlib.sha256(body).hexdigest() != m.group(1):
            return self._error(400, "BadRequest", "content does not match its sha256")
        with self.state.lock:
            self.state.lfs[m.group(1)] = body
        self._send(200, {})

    # --- handlers ------------------------------------------------------------------------------
    def _create_repo(self, payload):
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        url = f"http://{self.headers['Host']}/" + _key(f"{payload.get('type') or 'model'}s", repo_id)
        repo_id = _key(f"{payload.get('type') or 'model'}s", repo_id)
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
                elif item["key"] == "lfsFile":
                    blob = self.state.lfs.get(item["value"]["oid"])
                    if blob is None:
                        return self._error(400, "BadRequest", f"LFS object of {item['value']['path']} was never uploaded")
                    files[item["value"]["path"]] = blob
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
        public_id = repo_id.removeprefix("datasets/")
        self._send(200, {"id": public_id, "modelId": public_id, "sha": commit["oid"],
                         "private": self.state.repos[repo_id]["private"], "siblings": [
                             {"rfilename": p, "size": len(b)} for p, b in sorted(commit["files"].items())],
                         "tags": [], "downloads": 0, "likes": 0, "library_name": "transformers"})

    def _entries(self, files: dict, prefix: str, recursive: bool) -> list[dict]:
        entries, dirs = [], set()
        pre = prefix.rstrip("/") + "/" if prefix else ""
        for p, b in sorted(files.items()):
            if not p.startswith(pre):
                continue
            parts = p[len(pre):].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                d = pre + "/".join(parts[:depth])
                if d not in dirs and (recursive or depth == 1):
                    dirs.add(d)
                    entries.append({"type": "directory", "path": d, "oid": "0" * 40, "size": 0})
            if recursive or len(parts) == 1:
                entries.append({"type": "file", "path": p, "oid": _etag(b), "size": len(b)})
        return entries

    def _tree(self, repo_id, rev, prefix, recursive=False):
        commit, err = self.state.resolve(repo_id, rev)
        if err:
            return self._error(404, err, f"{repo_id}@{rev}: {err}")
        if prefix and not any(p.startswith(prefix.rstrip("/") + "/") for p in commit["files"]):
            return self._error(404, "EntryNotFound", f"{prefix} does not exist at {rev}")
        self._send(200, self._entries(commit["files"], prefix, recursive))

    def _paths_info(self, repo_id, rev, body):
        commit, err = self.state.resolve(repo_id, rev)
        if err:
            return self._error(404, err, f"{repo_id}@{rev}: {err}")
        try:
            paths = json.loads(body)["paths"]
        except (ValueError, KeyError):
            paths = parse_qs(body.decode()).get("paths", [])
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit["files"]:
                out.append({"type": "file", "path": p, "oid": _etag(commit["files"][p]), "size": len(commit["files"][p])})
            elif any(f.startswith(p + "/") for f in commit["files"]):
                out.append({"type": "directory", "path": p, "oid": "0" * 40, "size": 0})
        self._send(200, out)

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
