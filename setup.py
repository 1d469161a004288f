"""The one part of the build pyproject.toml cannot declare: the optional C extension
monitor._chunks (see monitor/chunks.py). Where it cannot be compiled, the install goes on
without it and the same reading runs in Python."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("monitor._chunks", ["monitor/_chunks.c"], optional=True)])
