"""eva_depthmask: foreground mask and depth from a (bg, fg_bg) pair.

Nothing runs at import: import the submodule you need (``from eva_depthmask import dataset``).
"""

__version__ = "0.1.0"
