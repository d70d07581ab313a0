"""A local fake of the Hugging Face Hub's HTTP API, on 127.0.0.1, for `huggingface_hub` pointed at it with
HF_ENDPOINT. It answers the routes the installed client calls (huggingface_hub 2.x, read from its source):

download (`HfApi.model_info`, `list_repo_tree`, `snapshot_download` -> `hf_hub_download`):
- GET  /api/models/{owner}/{name}[/revision/{revision}]   the commit a revision names (`sha`), `siblings`
- GET  /api/models/{owner}/{name}/tree/{revision}[/{path}] the tree listing (`?recursive=`), one page
- HEAD /{owner}/{name}/resolve/{revision}/{path}          X-Repo-Commit, ETag; for binary files as the Hub
                                                           serves LFS files: X-Linked-Etag (sha256), X-Linked-Size
- GET  /{owner}/{name}/resolve/{revision}/{path}          the bytes
upload (`HfApi.create_repo`, `create_commit`):
- POST /api/repos/create                                   {"name", "organization", "visibility"}; 409 if it exists
- POST /api/validate-yaml                                  a README's metadata (create_commit checks it first)
- POST /api/models/{owner}/{name}/preupload/{revision}     upload mode per file
- POST /api/models/{owner}/{name}/commit/{revision}        NDJSON: a header line, then one line per file

Errors as the Hub gives them, which the client turns into its exceptions by the X-Error-Code header:
RepoNotFound (404, or 401 for a private repository read without a token that may), RevisionNotFound,
EntryNotFound. Every upload is answered "regular" (the content inline in the commit, base64): the Hub says
"lfs" for large binaries, and the client then uploads them through Xet storage, which is not faked here;
downloads of binary files still carry the LFS headers the client reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from aiohttp import web

from tests.local_fake_server import LocalFakeServer

TEXT_SUFFIXES = (".json", ".md", ".txt", ".gitattributes")


@dataclass
class HubCall:
    name: str        # "model_info", "tree", "head", "get", "create_repo", "preupload", "commit", "validate_yaml"
    path: str
    status: int
    token: str | None

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass
class HubFault:
    name: str
    times: int = 1
    truncate_to: int | None = None  # "get": send only this many bytes of the file (with the full Content-Length)


@dataclass
class Repo:
    owner: str
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> path -> bytes
    branches: dict[str, str] = field(default_factory=dict)              # name -> sha


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub(LocalFakeServer[HubCall, HubFault]):
    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        """`tokens`: token -> the user it logs in (who may write under their own name and read their private
        repositories)."""
        super().__init__()
        self.tokens = dict(tokens or {})
        self.repos: dict[str, Repo] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- what a test does to the hub directly ---------------------------------------------------------

    def fault(self, fault: HubFault) -> None:
        self._faults.append(fault)

    def commit_files(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """A commit on `branch` changing `files` (someone with write access, or an attacker who has it)."""
        repo = self.repos[repo_id]
        parent = repo.branches.get(branch)
        tree = dict(repo.commits.get(parent, {})) if parent else {}
        tree.update(files)
        sha = hashlib.sha1((parent or "").encode() + json.dumps(
            {path: hashlib.sha256(data).hexdigest() for path, data in sorted(tree.items())}).encode()).hexdigest()
        repo.commits[sha] = tree
        repo.branches[branch] = sha
        return sha

    # --- routes ----------------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/repos/create", self._create_repo)
        app.router.add_post("/api/validate-yaml", self._validate_yaml)
        app.router.add_get("/api/models/{owner}/{name}", self._model_info)
        app.router.add_get("/api/models/{owner}/{name}/revision/{revision}", self._model_info)
        app.router.add_get("/api/models/{owner}/{name}/tree/{revision}", self._tree)
        app.router.add_get("/api/models/{owner}/{name}/tree/{revision}/{path:.+}", self._tree)
        app.router.add_post("/api/models/{owner}/{name}/preupload/{revision}", self._preupload)
        app.router.add_post("/api/models/{owner}/{name}/commit/{revision}", self._commit)
        app.router.add_route("HEAD", "/{owner}/{name}/resolve/{revision}/{path:.+}", self._resolve)
        app.router.add_get("/{owner}/{name}/resolve/{revision}/{path:.+}", self._resolve, allow_head=False)

    def _user(self, request: web.Request) -> tuple[str | None, str | None]:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else None
        return token, self.tokens.get(token or "")

    def _answer(self, request: web.Request, name: str, response: web.StreamResponse) -> web.StreamResponse:
        self.calls.append(HubCall(name, request.path, response.status, self._user(request)[0]))
        return response

    def _error(self, request: web.Request, name: str, status: int, code: str | None, message: str,
               commit: str | None = None) -> web.Response:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if commit:
            headers["X-Repo-Commit"] = commit
        return self._answer(request, name, web.json_response({"error": message}, status=status, headers=headers))

    def _readable(self, request: web.Request, name: str) -> tuple[str, Repo] | web.Response:
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        token, user = self._user(request)
        if repo is None or (repo.private and user != repo.owner):
            # the Hub does not say whether a private repository exists: 401 with a token that may not, or none
            status = 401 if repo is not None else 404
            return self._error(request, name, status, "RepoNotFound", "Repository not found")
        return repo_id, repo

    def _commit_of(self, repo: Repo, revision: str) -> str | None:
        if revision in repo.branches:
            return repo.branches[revision]
        return revision if revision in repo.commits else None

    async def _model_info(self, request: web.Request) -> web.Response:
        found = self._readable(request, "model_info")
        if isinstance(found, web.Response):
            return found
        repo_id, repo = found
        sha = self._commit_of(repo, request.match_info.get("revision", "main"))
        if sha is None:
            return self._error(request, "model_info", 404, "RevisionNotFound", "Invalid rev id")
        return self._answer(request, "model_info", web.json_response(
            {"id": repo_id, "modelId": repo_id, "author": repo.owner, "sha": sha, "private": repo.private,
             "siblings": [{"rfilename": path} for path in sorted(repo.commits[sha])], "tags": []}))

    async def _tree(self, request: web.Request) -> web.Response:
        found = self._readable(request, "tree")
        if isinstance(found, web.Response):
            return found
        _, repo = found
        sha = self._commit_of(repo, request.match_info["revision"])
        if sha is None:
            return self._error(request, "tree", 404, "RevisionNotFound", "Invalid rev id")
        entries = []
        for path, data in sorted(repo.commits[sha].items()):
            entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
            if not path.endswith(TEXT_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return self._answer(request, "tree", web.json_response(entries))

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        name = "head" if request.method == "HEAD" else "get"
        found = self._readable(request, name)
        if isinstance(found, web.Response):
            return found
        _, repo = found
        sha = self._commit_of(repo, request.match_info["revision"])
        if sha is None:
            return self._error(request, name, 404, "RevisionNotFound", "Invalid rev id")
        path = request.match_info["path"]
        data = repo.commits[sha].get(path)
        if data is None:
            return self._error(request, name, 404, "EntryNotFound", "Entry not found", commit=sha)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_id(data)}"', "Content-Length": str(len(data)),
                   "Content-Type": "application/octet-stream"}
        if not path.endswith(TEXT_SUFFIXES):  # as the Hub serves an LFS file
            headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))})
        if request.method == "HEAD":
            return self._answer(request, name, web.Response(status=200, headers=headers))
        fault = self._fault_for("get")
        if fault is not None and fault.truncate_to is not None:
            # a connection that drops early: the promised length, fewer bytes
            response = web.StreamResponse(status=200, headers=headers)
            await response.prepare(request)
            await response.write(data[:fault.truncate_to])
            self._answer(request, name, response)
            request.transport.close()
            return response
        start = _range_start(request.headers.get("Range"))
        if start:  # the client resumes a dropped download where it stopped
            headers.update({"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                            "Content-Length": str(len(data) - start)})
            return self._answer(request, name, web.Response(status=206, body=data[start:], headers=headers))
        return self._answer(request, name, web.Response(body=data, headers=headers))

    async def _create_repo(self, request: web.Request) -> web.Response:
        token, user = self._user(request)
        body = await request.json()
        owner = body.get("organization") or user
        if user is None or owner != user:
            return self._error(request, "create_repo", 401, None, "Invalid credentials in Authorization header")
        repo_id = f"{owner}/{body['name']}"
        if repo_id in self.repos:  # the Hub names the repository in its 409 too (exist_ok reads it)
            return self._answer(request, "create_repo", web.json_response(
                {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo_id}"}, status=409))
        private = body.get("visibility") == "private" or bool(body.get("private"))
        self.repos[repo_id] = Repo(owner, private)
        self.commit_files(repo_id, {".gitattributes": b"*.npz filter=lfs diff=lfs merge=lfs -text\n"})
        return self._answer(request, "create_repo", web.json_response({"url": f"{self.endpoint}/{repo_id}",
                                                                       "name": repo_id}))

    async def _validate_yaml(self, request: web.Request) -> web.Response:
        body = await request.json()
        content = body.get("content", "")
        errors = [] if content.startswith("---\n") else [{"message": "no metadata block"}]
        return self._answer(request, "validate_yaml", web.json_response({"errors": errors, "warnings": []},
                                                                        status=400 if errors else 200))

    def _writable(self, request: web.Request, name: str) -> tuple[str, Repo] | web.Response:
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        _, user = self._user(request)
        if repo is None:
            return self._error(request, name, 404, "RepoNotFound", "Repository not found")
        if user != repo.owner:
            return self._error(request, name, 403, None, "You don't have the rights to write to this repository")
        return repo_id, repo

    async def _preupload(self, request: web.Request) -> web.Response:
        found = self._writable(request, "preupload")
        if isinstance(found, web.Response):
            return found
        body = await request.json()
        return self._answer(request, "preupload", web.json_response({"files": [
            {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
            for item in body["files"]]}))

    async def _commit(self, request: web.Request) -> web.Response:
        found = self._writable(request, "commit")
        if isinstance(found, web.Response):
            return found
        repo_id, repo = found
        lines = [json.loads(line) for line in (await request.read()).splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
            return self._error(request, "commit", 400, None, "the first line must be the commit's header")
        files = {}
        for line in lines[1:]:
            if line["key"] != "file" or line["value"].get("encoding") != "base64":
                return self._error(request, "commit", 400, None, f"unsupported commit line {line['key']}")
            files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        sha = self.commit_files(repo_id, files, request.match_info["revision"])
        return self._answer(request, "commit", web.json_response(
            {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{sha}", "commitOid": sha, "success": True}))


def _range_start(header: str | None) -> int:
    """N of "bytes=N-" (the only form the client sends), else 0."""
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return 0
    return int(header[len("bytes="):-1] or 0)


class RunningHub:
    """A FakeHub served from its own thread and event loop, for the synchronous client (`huggingface_hub`,
    `aniface` commands called in-process) and for subprocesses: `with RunningHub(tokens) as hub: ...`."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        import asyncio
        import threading

        self.hub = FakeHub(tokens)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        import asyncio

        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.hub.start(), self._loop).result(timeout=30)
        return self.hub

    def __exit__(self, *exc_info: object) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.hub.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
