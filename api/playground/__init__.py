"""The playground: a web page to build, try and debug assistants, served by the API itself at /playground.

`router.py` serves the static single-page app in `static/` (same origin as the API, so it needs no CORS);
`vendor.py` keeps its third-party browser files pinned to npm releases.
"""
