"""Plugins: output types, source kinds, transports and policy gates from other Python distributions.

A distribution adds a row to one of vcomp's registries through an entry point (``vcomp.outputs``,
``vcomp.sources``, ``vcomp.transports``, ``vcomp.policies``) naming a :class:`composer.plugins.api.Plugin`.
:mod:`composer.plugins.api` is the versioned interface a plugin is written against (docs/plugins.md);
:mod:`composer.plugins.load` finds the entry points once, lazily, and refuses a bad one in one line;
:mod:`composer.plugins.registry` is the mapping each registry is (its built-in rows, then the plugins' rows).
"""
