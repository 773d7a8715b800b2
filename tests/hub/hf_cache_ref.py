#!/usr/bin/env python3
"""A reference for the cache huggingface_hub builds, for Forge's interop tests.

Debian 12 has no python3-huggingface-hub and PyPI is out of reach, so this re-implements,
step by step and with the standard library only, what huggingface_hub's hf_hub_download does
to the cache (file_download.py: _hf_hub_download_to_cache_dir, get_hf_file_metadata,
_get_metadata_or_catch_error, _create_symlink, _cache_commit_hash_for_specific_revision,
_chmod_and_move, _create_cachedir_tag; filelock's UnixFileLock). Each file is fetched the way
transformers fetches a model, one hf_hub_download per file, a missing file recorded in
.no_exist. It is written from huggingface_hub's code, not from Forge's.

usage: hf_cache_ref.py --cache DIR --endpoint URL [--token T] [--offline] REPO REVISION FILE...
Prints, per file, the pointer path (snapshots/<commit>/<file>) or "MISSING <file>".
"""
import argparse
import fcntl
import hashlib
import os
import re
import shutil
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

REGEX_COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")
CACHEDIR_TAG_CONTENT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)


class EntryNotFound(Exception):
    def __init__(self, headers):
        self.headers = headers


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def repo_folder_name(repo_id):
    return "--".join(["models", *repo_id.split("/")])


def normalize_etag(etag):
    return None if etag is None else etag.lstrip("W/").strip('"')


def head(url, headers):
    """HEAD following relative redirects only (_httpx_follow_relative_redirects)."""
    opener = urllib.request.build_opener(NoRedirect)
    while True:
        req = urllib.request.Request(url, method="HEAD", headers=headers)
        try:
            resp = opener.open(req, timeout=10)
            return url, resp.status, resp.headers
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                loc = e.headers.get("Location")
                if loc and urllib.parse.urlparse(loc).netloc == "":
                    url = urllib.parse.urljoin(url, loc)
                    continue
                return url, e.code, e.headers
            if e.headers.get("X-Error-Code") == "EntryNotFound":
                raise EntryNotFound(e.headers)
            raise


def cache_ref(storage, revision, commit_hash):
    if revision != commit_hash:
        ref_path = os.path.join(storage, "refs", revision)
        os.makedirs(os.path.dirname(ref_path), exist_ok=True)
        if not os.path.exists(ref_path) or open(ref_path).read() != commit_hash:
            tmp = ref_path + "." + uuid.uuid4().hex[:8] + ".tmp"
            with open(tmp, "w") as f:
                f.write(commit_hash)
            os.replace(tmp, ref_path)


def create_symlink(src, dst):
    try:
        os.remove(dst)
    except OSError:
        pass
    abs_src, abs_dst = os.path.abspath(src), os.path.abspath(dst)
    os.symlink(os.path.relpath(abs_src, os.path.dirname(abs_dst)), abs_dst)


def chmod_and_move(src, dst):
    tmp_file = os.path.join(os.path.dirname(src), "tmp_" + str(uuid.uuid4()))
    open(tmp_file, "a").close()
    mode = os.stat(tmp_file).st_mode
    os.chmod(src, stat.S_IMODE(mode))
    os.unlink(tmp_file)
    shutil.move(src, dst)


class FileLock:
    """filelock.UnixFileLock: open with O_RDWR | O_TRUNC (| O_CREAT), flock(LOCK_EX)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        flags = os.O_RDWR | os.O_TRUNC
        if not os.path.exists(self.path):
            flags |= os.O_CREAT
        self.fd = os.open(self.path, flags, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def hf_hub_download(cache_dir, endpoint, token, offline, repo_id, filename, revision):
    locks_dir = os.path.join(cache_dir, ".locks")
    storage = os.path.join(cache_dir, repo_folder_name(repo_id))
    relative_filename = os.path.join(*filename.split("/"))
    if REGEX_COMMIT_HASH.match(revision):
        pointer = os.path.join(storage, "snapshots", revision, relative_filename)
        if os.path.exists(pointer):
            return pointer
    if offline:  # local_files_only: refs -> snapshot
        commit = revision if REGEX_COMMIT_HASH.match(revision) else None
        ref_path = os.path.join(storage, "refs", revision)
        if commit is None and os.path.isfile(ref_path):
            commit = open(ref_path).read()
        if commit is not None:
            pointer = os.path.join(storage, "snapshots", commit, relative_filename)
            if os.path.exists(pointer):
                return pointer
            if os.path.exists(os.path.join(storage, ".no_exist", commit, relative_filename)):
                return None
        raise SystemExit("LocalEntryNotFound: %s" % filename)
    url = "%s/%s/resolve/%s/%s" % (endpoint, repo_id, urllib.parse.quote(revision, safe=""), urllib.parse.quote(filename))
    headers = {"user-agent": "hf_cache_ref", "Accept-Encoding": "identity"}
    if token:
        headers["authorization"] = "Bearer %s" % token
    try:
        url, status, h = head(url, headers)
    except EntryNotFound as e:
        commit = e.headers.get("X-Repo-Commit")
        if commit is not None:
            path = os.path.join(storage, ".no_exist", commit, relative_filename)
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
            cache_ref(storage, revision, commit)
        return None
    commit = h.get("X-Repo-Commit")
    etag = normalize_etag(h.get("X-Linked-Etag") or h.get("ETag"))
    is_redirect = 300 <= status < 400
    size = h.get("X-Linked-Size") or (None if is_redirect else h.get("Content-Length"))
    size = int(size)
    location = h.get("Location") or url
    if url != location and urllib.parse.urlparse(url).netloc != urllib.parse.urlparse(location).netloc:
        headers.pop("authorization", None)
    blob_path = os.path.join(storage, "blobs", etag)
    pointer = os.path.join(storage, "snapshots", commit, relative_filename)
    if os.path.exists(pointer):
        cache_ref(storage, revision, commit)
        return pointer
    os.makedirs(os.path.dirname(blob_path), exist_ok=True)
    os.makedirs(os.path.dirname(pointer), exist_ok=True)
    tag = os.path.join(cache_dir, "CACHEDIR.TAG")
    if not os.path.exists(tag):
        with open(tag, "w") as f:
            f.write(CACHEDIR_TAG_CONTENT)
    cache_ref(storage, revision, commit)
    lock_path = os.path.join(locks_dir, repo_folder_name(repo_id), "%s.lock" % etag)
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    if os.path.exists(blob_path):
        with FileLock(lock_path):
            if not os.path.exists(pointer):
                create_symlink(blob_path, pointer)
            return pointer
    with FileLock(lock_path):
        if not os.path.exists(blob_path):
            tmp = os.path.join(os.path.dirname(blob_path), "%s.%s.incomplete" % (etag, uuid.uuid4().hex[:8]))
            get_headers = dict(headers)
            get_headers.pop("Accept-Encoding")
            with urllib.request.urlopen(urllib.request.Request(location, headers=get_headers), timeout=10) as r, \
                    open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
                if f.tell() != size:
                    raise SystemExit("Consistency check failed for %s" % filename)
            chmod_and_move(tmp, blob_path)
        if not os.path.exists(pointer):
            create_symlink(blob_path, pointer)
    return pointer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--token")
    ap.add_argument("--offline", action="store_true")
    ap.add_argument("repo")
    ap.add_argument("revision")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    for name in a.files:
        p = hf_hub_download(a.cache, a.endpoint.rstrip("/"), a.token, a.offline, a.repo, name, a.revision)
        print(p if p is not None else "MISSING %s" % name)


if __name__ == "__main__":
    main()
