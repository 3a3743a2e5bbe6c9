"""The confined filesystem layer: every operation vcomp does inside a root, an image tree, a staging directory
or an output tree, by root-relative path through directory descriptors, never following a symlink.

See ``docs/security/rootfs.md``.
"""

from composer.rootfs.paths import NAME_MAX, PATH_MAX, path_problem, show
from composer.rootfs.root import Root, RootOSError, UnsafePath, move

__all__ = ["NAME_MAX", "PATH_MAX", "Root", "RootOSError", "UnsafePath", "move", "path_problem", "show"]
