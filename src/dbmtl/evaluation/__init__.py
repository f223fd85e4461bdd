"""Scores on the standard test sets, with intervals, and the audit that makes a label leak visible."""
