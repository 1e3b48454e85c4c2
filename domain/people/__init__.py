"""Employees and their effective-dated history."""
