"""Branches, org units, job levels and positions: the shape of a tenant's organisation."""
