#!/usr/bin/env python3
"""A stand-in for the HuggingFace Hub, for Forge's tests (stdlib only, 127.0.0.1 only).

It implements the part of the Hub protocol that huggingface_hub and Forge use:
  GET  /api/models/{org}/{name}/revision/{rev}[?blobs=true]   commit + file list
  HEAD /{org}/{name}/resolve/{rev}/{path}                      metadata (ETag, X-Repo-Commit,
  GET  /{org}/{name}/resolve/{rev}/{path}                      X-Linked-Etag, X-Linked-Size)
Small files are answered directly (ETag: their git blob sha1). LFS files (*.safetensors, *.bin,
..., or over 10 MB) are answered with a 302 to a second server, the "CDN", on another port
(so another origin): its ETag is not the sha256, and it rejects any request carrying an
Authorization header, as a presigned S3 / CloudFront URL does. Both honour Range.

Errors carry X-Error-Code / X-Error-Message as the Hub's do: RepoNotFound (401 when no token
was sent, 404 with one), GatedRepo (401 without token, 403 with a token lacking access),
RevisionNotFound, EntryNotFound (with X-Repo-Commit), and 401 "Invalid credentials in
Authorization header" for an unknown token.

Config (--config FILE, JSON):
  {"repos": [{"id": "org/name", "revisions": {"main": "DIR", "v1": "DIR2"},
              "gated": false, "private": false}],
   "tokens": {"hf_token": ["org/gated-repo", ...]},    # token -> repos it may read
   "aliases": {"old/name": "org/name"}}                  # renamed repos: relative 307
A revision's commit hash is derived from its files, so it is stable across runs.

Test control (on the Hub port, never logged or counted):
  GET  /_admin/log                 JSON list of the requests served so far (both servers)
  GET  /_admin/wait?match=S&count=N[&timeout=T]   blocks until N logged requests contain S
  POST /_admin/faults              JSON list of faults to add (see Fault)
  POST /_admin/release             lets "hold" faults continue
  POST /_admin/reset               clears faults and the in-memory log
Each request is also appended to --log FILE as one JSON line when it arrives, so
`wc -l` counts requests. On start the server prints "ready HUB_PORT CDN_PORT" on stdout.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".onnx", ".msgpack", ".ckpt")
LFS_MIN_SIZE = 10 * 1024 * 1024


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class RepoFile:
    def __init__(self, name, data):
        self.name = name
        self.data = data
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.git_sha1 = git_blob_sha1(data)
        self.lfs = name.endswith(LFS_SUFFIXES) or self.size > LFS_MIN_SIZE
        if self.lfs:
            self.pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
                            % (self.sha256, self.size)).encode()
            self.blob_id = git_blob_sha1(self.pointer)
        else:
            self.blob_id = self.git_sha1


class Revision:
    def __init__(self, repo_id, name, folder):
        self.files = {}
        for root, _, names in os.walk(folder):
            for n in names:
                path = os.path.join(root, n)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                with open(path, "rb") as f:
                    self.files[rel] = RepoFile(rel, f.read())
        h = hashlib.sha1(("commit %s %s\n" % (repo_id, name)).encode())
        for rel in sorted(self.files):
            h.update(("%s %s\n" % (rel, self.files[rel].blob_id)).encode())
        self.commit = h.hexdigest()


class Repo:
    def __init__(self, spec):
        self.id = spec["id"]
        self.gated = bool(spec.get("gated", False))
        self.private = bool(spec.get("private", False))
        self.revisions = {}
        self.by_commit = {}
        for name, folder in spec["revisions"].items():
            rev = Revision(self.id, name, folder)
            self.revisions[name] = rev
            self.by_commit[rev.commit] = rev

    def lookup(self, rev):
        return self.revisions.get(rev) or self.by_commit.get(rev)


class Fault:
    """One injected failure. kind: "status" (answer `status` with Retry-After `retry_after`),
    "cut" (send `at` body bytes then close the connection), "corrupt" (flip the byte at file
    offset `at`), "stall" (send `at` bytes then stop sending until the client gives up),
    "hold" (send `at` bytes, wait for /_admin/release, send the rest). A "status" fault also
    sends the `headers` given (e.g. X-Error-Code). It applies to
    requests on `server` ("hub", "cdn" or "any") with `method` (or any) whose path contains
    `match`, `times` times. `at` defaults to half the body."""

    def __init__(self, d):
        self.kind = d["kind"]
        self.server = d.get("server", "any")
        self.method = d.get("method")
        self.match = d.get("match", "")
        self.times = int(d.get("times", 1))
        self.at = d.get("at")
        self.status = int(d.get("status", 503))
        self.retry_after = d.get("retry_after")
        self.headers = d.get("headers", {})

    def applies(self, server, method, path):
        return (self.times > 0 and self.server in ("any", server)
                and (self.method is None or self.method == method) and self.match in path)


class State:
    def __init__(self, config, log_path):
        self.repos = {r["id"]: Repo(r) for r in config.get("repos", [])}
        self.tokens = config.get("tokens", {})
        self.aliases = config.get("aliases", {})
        self.blobs = {}
        for repo in self.repos.values():
            for rev in repo.revisions.values():
                for f in rev.files.values():
                    if f.lfs:
                        self.blobs[f.sha256] = f
        self.lock = threading.Condition()
        self.log = []
        self.faults = []
        self.released = False
        self.log_file = open(log_path, "a") if log_path else None
        self.hub_base = ""
        self.cdn_base = ""

    def record(self, server, handler):
        entry = {"seq": 0, "t": time.time(), "server": server, "method": handler.command,
                 "path": handler.path, "range": handler.headers.get("Range"),
                 "auth": handler.headers.get("Authorization")}
        with self.lock:
            entry["seq"] = len(self.log)
            self.log.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry) + "\n")
                self.log_file.flush()
            self.lock.notify_all()

    def take_fault(self, server, method, path):
        with self.lock:
            for f in self.faults:
                if f.applies(server, method, path):
                    f.times -= 1
                    return f
        return None


STATE = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_role = "hub"

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- helpers ---------------------------------------------------------------------------

    def send_simple(self, status, body=b"", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message, extra=None):
        h = {"X-Error-Message": message}
        if code:
            h["X-Error-Code"] = code
        h.update(extra or {})
        self.send_simple(status, json.dumps({"error": message}), dict(h, **{"Content-Type": "application/json"}))

    def token(self):
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        return auth[7:] if auth.startswith("Bearer ") else auth

    def check_access(self, repo_id, for_content):
        """Returns a Repo, or None after answering with the Hub's error."""
        tok = self.token()
        if tok is not None and tok not in STATE.tokens:
            self.error(401, None, "Invalid credentials in Authorization header")
            return None
        repo = STATE.repos.get(repo_id)
        allowed = tok is not None and repo_id in STATE.tokens.get(tok, [])
        if repo is None or (repo.private and not allowed):
            self.error(401 if tok is None else 404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and for_content and not allowed:
            if tok is None:
                self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it "
                           "and be authenticated to access it. Please log in." % repo_id)
            else:
                self.error(403, "GatedRepo", "Access to model %s is restricted and you are not in the "
                           "authorized list. Visit %s/%s to ask for access." % (repo_id, STATE.hub_base, repo_id))
            return None
        return repo

    def send_body(self, data, etag, extra_headers, fault):
        """Answers a GET/HEAD for file bytes, honouring Range and the fault if any."""
        start, end = 0, len(data)
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            try:
                start = int(a)
                end = int(b) + 1 if b else len(data)
            except ValueError:
                start, end = 0, len(data)
            if start >= len(data) or start >= end:
                self.send_simple(416, "", {"Content-Range": "bytes */%d" % len(data)})
                return
            end = min(end, len(data))
            status = 206
        body = data[start:end]
        if fault is not None and fault.kind == "corrupt":
            at = fault.at if fault.at is not None else len(data) // 2
            if start <= at < end:
                b = bytearray(body)
                b[at - start] ^= 0xFF
                body = bytes(b)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"%s"' % etag)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, len(data)))
        for k, v in extra_headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.kind in ("cut", "stall", "hold"):
            at = fault.at if fault.at is not None else len(body) // 2
            at = max(0, min(at, len(body)))
            self.wfile.write(body[:at])
            self.wfile.flush()
            if fault.kind == "cut":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.kind == "stall":
                self.close_connection = True
                self.connection.settimeout(30)
                try:
                    self.connection.recv(1)  # returns when the client gives up and closes
                except OSError:
                    pass
                return
            with STATE.lock:
                STATE.lock.wait_for(lambda: STATE.released, timeout=30)
            body = body[at:]
        self.wfile.write(body)

    # ---- dispatch --------------------------------------------------------------------------

    def do_HEAD(self):
        self.dispatch()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        if self.path.startswith("/_admin/"):
            return self.admin()
        STATE.record(self.server_role, self)
        fault = STATE.take_fault(self.server_role, self.command, self.path)
        if fault is not None and fault.kind == "status":
            h = {}
            if fault.retry_after is not None:
                h["Retry-After"] = str(fault.retry_after)
            h.update(fault.headers)
            return self.send_simple(fault.status, "injected error %d" % fault.status, h)
        if self.server_role == "cdn":
            return self.cdn(fault)
        return self.hub(fault)

    def cdn(self, fault):
        if self.command not in ("GET", "HEAD"):
            return self.send_simple(405, "method not allowed")
        if self.headers.get("Authorization"):
            return self.send_simple(400, "<Error><Code>InvalidArgument</Code><Message>Only one auth "
                                    "mechanism allowed</Message></Error>", {"Content-Type": "application/xml"})
        path = urllib.parse.urlsplit(self.path).path
        f = STATE.blobs.get(path.rsplit("/", 1)[-1])
        if not path.startswith("/lfs/") or f is None:
            return self.send_simple(404, "<Error><Code>NoSuchKey</Code></Error>")
        cdn_etag = hashlib.md5(f.data).hexdigest()  # a CDN's ETag: not the sha256
        self.send_body(f.data, cdn_etag, {"Content-Disposition": 'inline; filename="%s"' % f.name.rsplit("/", 1)[-1]}, fault)

    def hub(self, fault):
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        parts = split.path.split("/")
        # /api/models/{org}/{name}/revision/{rev}
        if len(parts) >= 7 and parts[1:3] == ["api", "models"] and parts[5] == "revision":
            if self.command != "GET":
                return self.send_simple(405, "method not allowed")
            repo_id = urllib.parse.unquote(parts[3]) + "/" + urllib.parse.unquote(parts[4])
            if repo_id in STATE.aliases:
                return self.send_simple(307, "", {"Location": "/api/models/%s/revision/%s%s" % (
                    STATE.aliases[repo_id], "/".join(parts[6:]), "?" + split.query if split.query else "")})
            rev_name = urllib.parse.unquote("/".join(parts[6:]))
            return self.model_info(repo_id, rev_name, query.get("blobs", ["false"])[0] in ("true", "True", "1"))
        # /{org}/{name}/resolve/{rev}/{path...}
        if len(parts) >= 6 and parts[3] == "resolve":
            if self.command not in ("GET", "HEAD"):
                return self.send_simple(405, "method not allowed")
            repo_id = urllib.parse.unquote(parts[1]) + "/" + urllib.parse.unquote(parts[2])
            if repo_id in STATE.aliases:
                return self.send_simple(307, "", {"Location": "/%s/%s" % (STATE.aliases[repo_id], "/".join(parts[3:]))})
            rev_name = urllib.parse.unquote(parts[4])
            filename = urllib.parse.unquote("/".join(parts[5:]))
            return self.resolve(repo_id, rev_name, filename, fault)
        self.send_simple(404, "not found")

    def model_info(self, repo_id, rev_name, blobs):
        repo = self.check_access(repo_id, for_content=False)
        if repo is None:
            return
        rev = repo.lookup(rev_name)
        if rev is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev_name)
        siblings = []
        for name in sorted(rev.files):
            f = rev.files[name]
            s = {"rfilename": name}
            if blobs:
                s["blobId"] = f.blob_id
                s["size"] = f.size
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
            siblings.append(s)
        info = {"_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
                "author": repo_id.split("/")[0], "sha": rev.commit, "lastModified": "2024-01-01T00:00:00.000Z",
                "private": repo.private, "gated": "manual" if repo.gated else False, "disabled": False,
                "library_name": "transformers", "tags": ["transformers", "safetensors", "llama"],
                "siblings": siblings}
        self.send_simple(200, json.dumps(info), {"Content-Type": "application/json"})

    def resolve(self, repo_id, rev_name, filename, fault):
        repo = self.check_access(repo_id, for_content=True)
        if repo is None:
            return
        rev = repo.lookup(rev_name)
        if rev is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev_name)
        f = rev.files.get(filename)
        if f is None:
            return self.error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": rev.commit})
        common = {"X-Repo-Commit": rev.commit}
        if f.lfs:
            location = "%s/lfs/%s?X-Amz-Signature=%s" % (STATE.cdn_base, f.sha256, f.sha256[:16])
            body = "Found. Redirecting to %s" % location  # its length is not the file's size
            return self.send_simple(302, body, dict(common, **{
                "Location": location, "ETag": '"%s"' % f.blob_id,
                "X-Linked-Etag": '"%s"' % f.sha256, "X-Linked-Size": str(f.size)}))
        self.send_body(f.data, f.git_sha1, common, fault)

    # ---- admin ---------------------------------------------------------------------------

    def admin(self):
        split = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(split.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if split.path == "/_admin/log":
            with STATE.lock:
                return self.send_simple(200, json.dumps(STATE.log), {"Content-Type": "application/json"})
        if split.path == "/_admin/wait":
            match = q.get("match", [""])[0]
            count = int(q.get("count", ["1"])[0])
            timeout = float(q.get("timeout", ["20"])[0])
            with STATE.lock:
                ok = STATE.lock.wait_for(
                    lambda: sum(1 for e in STATE.log if match in e["method"] + " " + e["path"]) >= count, timeout)
            return self.send_simple(200 if ok else 408, "ok\n" if ok else "timeout\n")
        if split.path == "/_admin/faults" and self.command == "POST":
            faults = [Fault(d) for d in json.loads(body or b"[]")]
            with STATE.lock:
                STATE.faults.extend(faults)
            return self.send_simple(200, "ok\n")
        if split.path == "/_admin/release" and self.command == "POST":
            with STATE.lock:
                STATE.released = True
                STATE.lock.notify_all()
            return self.send_simple(200, "ok\n")
        if split.path == "/_admin/reset" and self.command == "POST":
            with STATE.lock:
                STATE.faults = []
                STATE.log = []
                STATE.released = False
            return self.send_simple(200, "ok\n")
        if split.path == "/_admin/commits":
            out = {rid: {name: rev.commit for name, rev in r.revisions.items()} for rid, r in STATE.repos.items()}
            return self.send_simple(200, json.dumps(out), {"Content-Type": "application/json"})
        self.send_simple(404, "unknown admin path")


class CdnHandler(Handler):
    server_role = "cdn"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    with open(args.config) as f:
        STATE = State(json.load(f), args.log)
    hub = Server(("127.0.0.1", 0), Handler)
    cdn = Server(("127.0.0.1", 0), CdnHandler)
    STATE.hub_base = "http://127.0.0.1:%d" % hub.server_address[1]
    STATE.cdn_base = "http://127.0.0.1:%d" % cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    sys.stdout.write("ready %d %d\n" % (hub.server_address[1], cdn.server_address[1]))
    sys.stdout.flush()
    sys.stdout.close()
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
