"""Placeholder filled in this session (see keras_seg/convert/__init__.py)."""
