"""Every engine, behind one protocol per capability (see models/base.py)."""
