"""Vigil's end-to-end validation suite: a black-box client that proves a deployment works.

It speaks HTTP to a target through the public SDK (`vigil.client`) and nothing else of `vigil` (an import-linter
contract says so), so the same suites validate the server it starts itself and any live deployment.
"""
