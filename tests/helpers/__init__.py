"""Helpers shared by the test packages (fixtures stay in each package's conftest.py; test
modules never import each other)."""
