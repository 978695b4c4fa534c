"""Private helpers shared by every part of netgaze (not public API; may change without notice).

- ``atomic``: files written atomically (temporary file, fsync, rename);
- ``containment``: files read from a run folder stay inside it (links resolved);
- ``devices``: a device name checked against this machine;
- ``picture_files``: the one reader of picture files;
- ``plots``: matplotlib figures that draw user text as plain text;
- ``run_json``: a run folder's JSON files read and checked (the lab and the report);
- ``version``: the package version.
"""
