"""Maintainer tools that are not part of the installed package (see CONTRIBUTING.md)."""
