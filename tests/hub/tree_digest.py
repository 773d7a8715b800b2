#!/usr/bin/env python3
"""Prints one line per entry under a folder: its relative path, its kind, and its symlink
target, or its mode and sha256 (files), or its mode (folders); for comparing two caches."""
import hashlib
import os
import stat
import sys

root = sys.argv[1]
for base, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        path = os.path.join(base, name)
        rel = os.path.relpath(path, root)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            print(rel, "link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            print(rel, "dir", oct(stat.S_IMODE(st.st_mode)))
        else:
            with open(path, "rb") as f:
                print(rel, "file", oct(stat.S_IMODE(st.st_mode)), hashlib.sha256(f.read()).hexdigest())
