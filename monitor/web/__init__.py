"""The web app (`omvarld web`): what Omvärld knows, in a browser.

Server-rendered pages (Starlette and Jinja2, no JavaScript needed), a small JSON API, the digest
archive and the recipients' signed pages. Reads only, except for a recipient's opt-out.
"""
